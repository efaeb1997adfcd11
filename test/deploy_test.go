package test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The deployment examples under deploy/ are checked the way they would be
// used, without Docker or a Kubernetes cluster: deploy/make-secrets.sh makes
// their secrets; every file the compose file and the manifests mount is
// resolved to the file it would be; the proxy's configuration, with each
// path it names replaced by the file mounted there, passes `scram-proxy
// check-config`; and the brokers' start.sh, run with a stand-in for Kafka's
// scripts, writes a complete server.properties that agrees with the proxy's
// configuration.

const deployDir = "../deploy"

// mounts maps a path inside a container to the host file or directory the
// example mounts there.
type mounts map[string]string

// resolve maps p, a path inside the container, to the host, by the longest
// mount that holds it.
func (m mounts) resolve(p string) (string, bool) {
	best := ""
	for target := range m {
		if (p == target || strings.HasPrefix(p, target+"/")) && len(target) > len(best) {
			best = target
		}
	}
	if best == "" {
		return "", false
	}
	return m[best] + strings.TrimPrefix(p, best), true
}

// copyExample copies deploy/<name>, without generated secrets, into a
// temporary directory and makes its secrets there with make-secrets.sh,
// twice: the second run must change nothing.
func copyExample(t *testing.T, name string, hosts ...string) string {
	t.Helper()
	src := filepath.Join(deployDir, name)
	dst := filepath.Join(t.TempDir(), name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() && (rel == "secrets" || rel == "client") {
			return filepath.SkipDir
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	makeSecrets := func() string {
		cmd := exec.Command("bash", append([]string{filepath.Join(deployDir, "make-secrets.sh"), dst}, hosts...)...)
		cmd.Env = append(os.Environ(), "SCRAM_PROXY="+proxyBinary)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make-secrets.sh: %v\n%s", err, out)
		}
		return treeDigest(t, dst)
	}
	if first, second := makeSecrets(), makeSecrets(); first != second {
		t.Fatal("make-secrets.sh changed its output when run a second time")
	}
	return dst
}

// treeDigest hashes every file under dir (names and contents).
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		fmt.Fprintf(h, "%s %d\n", p, len(data))
		h.Write(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// checkProxyConfig rewrites the proxy configuration at host (the file
// mounted at the container's --config path) with rewriteProxyConfig and
// runs check-config on the result with loopback ports. It returns the
// configuration as written in the example, parsed.
func checkProxyConfig(t *testing.T, host string, m mounts) map[string]any {
	t.Helper()
	cfgFile := rewriteProxyConfig(t, host, m, nil)
	cmd := exec.Command(proxyBinary, "check-config", "--config", cfgFile,
		"--listener.address", "127.0.0.1:0", "--metrics.address", "127.0.0.1:0")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !strings.HasPrefix(stdout.String(), "configuration OK") {
		t.Errorf("check-config on %s: %v\n%s%s", host, err, stdout.String(), stderr.String())
	}
	var parsed map[string]any
	readYAML(t, host, &parsed)
	return parsed
}

// rewriteProxyConfig writes a copy of the proxy configuration at host
// with every absolute path replaced by the file mounted there (a path no
// mount provides fails the test), then changed by edit (if not nil), and
// returns the copy's path.
func rewriteProxyConfig(t *testing.T, host string, m mounts, edit func(cfg map[string]any)) string {
	t.Helper()
	data, err := os.ReadFile(host)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", host, err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Value, "/") {
			p, ok := m.resolve(n.Value)
			if !ok {
				t.Errorf("the proxy configuration names %s, which no mount of its container provides", n.Value)
				return
			}
			n.Value = p
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		var cfg map[string]any
		if err := yaml.Unmarshal(out, &cfg); err != nil {
			t.Fatal(err)
		}
		edit(cfg)
		if out, err = yaml.Marshal(cfg); err != nil {
			t.Fatal(err)
		}
	}
	cfgFile := filepath.Join(t.TempDir(), "scram-proxy.yaml")
	if err := os.WriteFile(cfgFile, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return cfgFile
}

// checkTokenKey: with delegation_tokens.store broker, the proxy's one token
// key is the file (through the mounts m) holding the brokers'
// delegation.token.secret.key, brokerKey.
func checkTokenKey(t *testing.T, proxyCfg map[string]any, m mounts, brokerKey string) {
	t.Helper()
	if lookup(proxyCfg, "delegation_tokens.store") != "broker" {
		return
	}
	keys, _ := proxyCfg["delegation_tokens"].(map[string]any)["keys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("delegation_tokens.store broker takes one key, the brokers'; the example lists %d", len(keys))
	}
	file, _ := keys[0].(map[string]any)["file"].(string)
	host, ok := m.resolve(file)
	if !ok {
		t.Fatalf("no mount provides the token key %s", file)
	}
	if readSecret(t, host) != brokerKey {
		t.Errorf("the proxies' token key %s is not the brokers' delegation.token.secret.key", file)
	}
}

// lookup reads a dotted key of a parsed YAML map ("" when absent).
func lookup(m map[string]any, key string) string {
	var v any = m
	for _, k := range strings.Split(key, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = mm[k]
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// brokerRun is what start.sh did with a stand-in for Kafka's scripts.
type brokerRun struct {
	props      map[string]string // the server.properties it ran the broker with
	raw        string
	formatArgs []string // kafka-storage.sh's arguments ("" when not run)
}

// runStartScript runs a broker's start.sh (its host path) with env, and
// KAFKA_HOME pointing at stand-ins of kafka-storage.sh and
// kafka-server-start.sh that record their arguments.
func runStartScript(t *testing.T, script string, env []string) brokerRun {
	t.Helper()
	home := t.TempDir()
	rec := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(home, "bin", name), []byte("#!/bin/bash\nset -eu\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("kafka-storage.sh", `printf '%s\n' "$@" >`+rec+"/format.args\n")
	stub("kafka-server-start.sh", `cp "$1" `+rec+"/server.properties\n")
	cmd := exec.Command("bash", script)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "KAFKA_HOME=" + home}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("start.sh: %v\n%s", err, out)
	}
	var r brokerRun
	raw, err := os.ReadFile(filepath.Join(rec, "server.properties"))
	if err != nil {
		t.Fatalf("start.sh did not start the broker: %v", err)
	}
	r.raw = string(raw)
	r.props = map[string]string{}
	for _, line := range strings.Split(r.raw, "\n") {
		if line = strings.TrimSpace(line); line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("server.properties: line without '=': %q", line)
			continue
		}
		if _, dup := r.props[k]; dup {
			t.Errorf("server.properties sets %s twice", k)
		}
		r.props[k] = v
	}
	if args, err := os.ReadFile(filepath.Join(rec, "format.args")); err == nil {
		r.formatArgs = strings.Split(strings.TrimSpace(string(args)), "\n")
	}
	return r
}

func readSecret(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// checkBroker checks the server.properties a broker ran with against the
// proxy's configuration and the secrets: KRaft, the listeners (the one the
// proxy dials among them, SASL SCRAM for the proxy's identity), the
// StandardAuthorizer with the proxy's identity as super user when clients
// act as themselves, delegation.token.secret.key, and the proxy's SCRAM
// user created at format.
func checkBroker(t *testing.T, r brokerRun, nodeID string, proxyCfg map[string]any, secretsDir string) {
	t.Helper()
	if m := regexp.MustCompile(`@[A-Z_]+@`).FindString(r.raw); m != "" {
		t.Errorf("server.properties still holds the placeholder %s", m)
	}
	want := map[string]string{
		"process.roles":                  "broker,controller",
		"node.id":                        nodeID,
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"delegation.token.secret.key":    readSecret(t, filepath.Join(secretsDir, "delegation-token-secret-key")),
		"allow.everyone.if.no.acl.found": "false",
	}
	for k, v := range want {
		if r.props[k] != v {
			t.Errorf("server.properties: %s=%q, want %q", k, r.props[k], v)
		}
	}
	for _, k := range []string{"controller.quorum.voters", "controller.listener.names", "log.dirs", "inter.broker.listener.name"} {
		if r.props[k] == "" {
			t.Errorf("server.properties lacks %s", k)
		}
	}
	// The listener the proxy dials: its port, SASL_PLAINTEXT with the
	// proxy's mechanism enabled.
	bootstrap := strings.Trim(lookup(proxyCfg, "upstream.bootstrap_servers"), "[]")
	_, port, _ := strings.Cut(bootstrap, ":")
	listener := ""
	for _, l := range strings.Split(r.props["listeners"], ",") {
		name, addr, _ := strings.Cut(l, "://")
		if strings.HasSuffix(addr, ":"+port) {
			listener = name
		}
	}
	if listener == "" {
		t.Fatalf("no listener on the proxy's upstream port %s: listeners=%s", port, r.props["listeners"])
	}
	protocols := map[string]string{}
	for _, p := range strings.Split(r.props["listener.security.protocol.map"], ",") {
		k, v, _ := strings.Cut(p, ":")
		protocols[k] = v
	}
	mech := lookup(proxyCfg, "upstream.sasl.mechanism")
	user := lookup(proxyCfg, "upstream.sasl.username")
	lname := strings.ToLower(listener)
	if protocols[listener] != "SASL_PLAINTEXT" || !strings.Contains(r.props["listener.name."+lname+".sasl.enabled.mechanisms"], mech) ||
		!strings.Contains(r.props["listener.name."+lname+"."+strings.ToLower(mech)+".sasl.jaas.config"], "ScramLoginModule") {
		t.Errorf("the proxy's listener %s does not take %s over SASL_PLAINTEXT", listener, mech)
	}
	for name := range protocols {
		if !strings.HasPrefix(protocols[name], "SASL_") {
			t.Errorf("listener %s is %s: every broker listener must authenticate", name, protocols[name])
		}
	}
	if lookup(proxyCfg, "upstream.principal_mode") == "client" &&
		!strings.Contains(";"+r.props["super.users"]+";", ";User:"+user+";") {
		t.Errorf("super.users=%s lacks the proxy's identity User:%s (principal_mode client creates tokens for every user)", r.props["super.users"], user)
	}
	password := readSecret(t, filepath.Join(secretsDir, "proxy-password"))
	formatted := strings.Join(r.formatArgs, " ")
	if !strings.Contains(formatted, mech+"=[name="+user+",password="+password+"]") {
		t.Errorf("the storage is not formatted with the proxy's %s user %s: %q", mech, user, r.formatArgs)
	}
	if !strings.Contains(formatted, "--cluster-id "+readSecret(t, filepath.Join(secretsDir, "cluster-id"))) {
		t.Errorf("the storage is not formatted with the cluster id from the secrets: %q", r.formatArgs)
	}
}

// composeFile is what the test reads of docker-compose.yml.
type composeFile struct {
	Services map[string]struct {
		Build       string            `yaml:"build"`
		Image       string            `yaml:"image"`
		Command     []string          `yaml:"command"`
		NetworkMode string            `yaml:"network_mode"`
		DependsOn   []string          `yaml:"depends_on"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Configs     []struct {
			Source string `yaml:"source"`
			Target string `yaml:"target"`
		} `yaml:"configs"`
		Secrets []string `yaml:"secrets"`
	} `yaml:"services"`
	Configs map[string]struct {
		File string `yaml:"file"`
	} `yaml:"configs"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestDeployCompose(t *testing.T) {
	dir := copyExample(t, "compose", "localhost")
	data, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(false)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, cf := range c.Configs {
		if _, err := os.Stat(filepath.Join(dir, cf.File)); err != nil {
			t.Errorf("config %s: %v", name, err)
		}
	}
	for name, s := range c.Secrets {
		if _, err := os.Stat(filepath.Join(dir, s.File)); err != nil {
			t.Errorf("secret %s (deploy/make-secrets.sh should make it): %v", name, err)
		}
	}
	volumes := t.TempDir()
	var proxies, brokers []string
	proxyMounts := map[string]mounts{}
	for name, s := range c.Services {
		m := mounts{}
		if s.Build != "" {
			if _, err := os.Stat(filepath.Join(deployDir, "compose", s.Build, "Dockerfile")); err != nil {
				t.Errorf("service %s builds %s: %v", name, s.Build, err)
			}
		}
		if peer, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			if _, ok := c.Services[peer]; !ok {
				t.Errorf("service %s shares the network of %s, which is not a service", name, peer)
			}
		}
		for _, d := range s.DependsOn {
			if _, ok := c.Services[d]; !ok {
				t.Errorf("service %s depends on %s, which is not a service", name, d)
			}
		}
		for _, cf := range s.Configs {
			def, ok := c.Configs[cf.Source]
			if !ok {
				t.Errorf("service %s uses config %s, which is not defined", name, cf.Source)
				continue
			}
			m[cf.Target] = filepath.Join(dir, def.File)
		}
		for _, sec := range s.Secrets {
			def, ok := c.Secrets[sec]
			if !ok {
				t.Errorf("service %s uses secret %s, which is not defined", name, sec)
				continue
			}
			m["/run/secrets/"+sec] = filepath.Join(dir, def.File)
		}
		for _, v := range s.Volumes {
			src, target, _ := strings.Cut(v, ":")
			target, _, _ = strings.Cut(target, ":")
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which is not defined", name, src)
				continue
			}
			m[target] = filepath.Join(volumes, src) // a fresh volume: an empty directory
			if err := os.MkdirAll(m[target], 0o755); err != nil {
				t.Fatal(err)
			}
		}
		switch {
		case len(s.Command) == 2 && s.Command[0] == "--config":
			proxies = append(proxies, name)
			proxyMounts[name] = m
			cfg, ok := m.resolve(s.Command[1])
			if !ok {
				t.Errorf("service %s: no mount provides its configuration %s", name, s.Command[1])
				continue
			}
			proxyCfg := checkProxyConfig(t, cfg, m)
			peer := c.Services[strings.TrimPrefix(s.NetworkMode, "service:")]
			if peer.Image == "" || !strings.HasPrefix(lookup(proxyCfg, "upstream.bootstrap_servers"), "[127.0.0.1:") {
				t.Errorf("service %s is not a sidecar: it must share a broker's network and dial it on 127.0.0.1", name)
			}
		case len(s.Command) == 2 && s.Command[0] == "bash":
			brokers = append(brokers, name)
		default:
			t.Errorf("service %s: unexpected command %q", name, s.Command)
		}
	}
	sort.Strings(brokers)
	sort.Strings(proxies)
	if len(brokers) != 3 || len(proxies) != 3 {
		t.Fatalf("want three brokers and three proxies, have %v and %v", brokers, proxies)
	}
	// Every proxy reads the same configuration file.
	proxyCfg := checkProxyConfig(t, filepath.Join(dir, "scram-proxy.yaml"), mounts{"/run/secrets": filepath.Join(dir, "secrets"), "/var/lib/scram-proxy": t.TempDir()})
	for _, name := range brokers {
		s := c.Services[name]
		m := mounts{}
		for _, cf := range s.Configs {
			m[cf.Target] = filepath.Join(dir, c.Configs[cf.Source].File)
		}
		script, ok := m.resolve(s.Command[1])
		if !ok {
			t.Fatalf("service %s: no mount provides %s", name, s.Command[1])
		}
		if props, ok := m.resolve(path.Join(path.Dir(s.Command[1]), "server.properties")); !ok || filepath.Base(props) != "server.properties" {
			t.Errorf("service %s: server.properties is not mounted next to start.sh", name)
		}
		env := []string{"HOSTNAME=" + name, "DATA_DIR=" + t.TempDir()}
		for k, v := range s.Environment {
			if k == "SECRETS_DIR" {
				v = filepath.Join(dir, "secrets") // /run/secrets: every secret of the service is there
				for _, need := range []string{"cluster-id", "kafka-password", "proxy-password", "delegation-token-secret-key"} {
					if !contains(s.Secrets, need) {
						t.Errorf("service %s does not mount the secret %s", name, need)
					}
				}
			}
			env = append(env, k+"="+v)
		}
		r := runStartScript(t, script, env)
		checkBroker(t, r, s.Environment["NODE_ID"], proxyCfg, filepath.Join(dir, "secrets"))
		if got, want := r.props["advertised.listeners"], "://"+name+":"; !strings.Contains(got, want) {
			t.Errorf("service %s advertises %s, not its own host name", name, got)
		}
		for _, p := range proxies {
			checkTokenKey(t, proxyCfg, proxyMounts[p], r.props["delegation.token.secret.key"])
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "client", "admin.properties")); err != nil {
		t.Errorf("make-secrets.sh wrote no client settings: %v", err)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// k8sObject is what the test reads of a Kubernetes object.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas int `yaml:"replicas"`
		Template struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
					Secret *struct {
						SecretName string `yaml:"secretName"`
						Optional   bool   `yaml:"optional"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name            string `yaml:"name"`
	SecurityContext struct {
		RunAsUser    *int64 `yaml:"runAsUser"`
		RunAsNonRoot bool   `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
}

type kustomization struct {
	Resources []string       `yaml:"resources"`
	ConfigMap []generatorDef `yaml:"configMapGenerator"`
	Secret    []generatorDef `yaml:"secretGenerator"`
}

type generatorDef struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
}

func TestDeployKubernetes(t *testing.T) {
	dir := copyExample(t, "kubernetes", "*.kafka.default.svc.cluster.local")
	var k kustomization
	readYAML(t, filepath.Join(dir, "kustomization.yaml"), &k)
	generated := map[string]map[string]string{} // "configMap/name" -> key -> host file
	for kind, defs := range map[string][]generatorDef{"configMap": k.ConfigMap, "secret": k.Secret} {
		for _, g := range defs {
			files := map[string]string{}
			for _, f := range g.Files {
				p := filepath.Join(dir, f)
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%sGenerator %s: %v", kind, g.Name, err)
				}
				files[filepath.Base(f)] = p
			}
			generated[kind+"/"+g.Name] = files
		}
	}
	var sts *k8sObject
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var o k8sObject
			if err := dec.Decode(&o); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("%s: %v", r, err)
			}
			if o.Kind == "StatefulSet" {
				sts = &o
			}
		}
	}
	if sts == nil || sts.Spec.Replicas != 3 {
		t.Fatal("want a StatefulSet of three pods")
	}
	pod := sts.Spec.Template.Spec
	claims := map[string]bool{}
	for _, c := range sts.Spec.VolumeClaimTemplates {
		claims[c.Metadata.Name] = true
	}
	// mountsOf maps a container's mount paths to what they would hold.
	mountsOf := func(c k8sContainer) mounts {
		m := mounts{}
		for _, vm := range c.VolumeMounts {
			host := ""
			if claims[vm.Name] {
				host = t.TempDir()
			}
			for _, v := range pod.Volumes {
				if v.Name != vm.Name {
					continue
				}
				var files map[string]string
				var ok bool
				switch {
				case v.ConfigMap != nil:
					files, ok = generated["configMap/"+v.ConfigMap.Name]
				case v.Secret != nil:
					files, ok = generated["secret/"+v.Secret.SecretName]
					if !ok && v.Secret.Optional {
						files, ok = map[string]string{}, true // not created: an empty directory
					}
				}
				if !ok {
					t.Errorf("volume %s refers to nothing kustomization.yaml generates", v.Name)
					continue
				}
				host = t.TempDir()
				for key, f := range files {
					data, err := os.ReadFile(f)
					if err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(host, key), data, 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			if host == "" {
				t.Errorf("container %s mounts %s, which is no volume of the pod", c.Name, vm.Name)
				continue
			}
			if vm.SubPath != "" {
				host = filepath.Join(host, vm.SubPath)
			}
			m[vm.MountPath] = host
		}
		return m
	}
	var proxy, broker *k8sContainer
	for i, c := range pod.Containers {
		switch c.Name {
		case "scram-proxy":
			proxy = &pod.Containers[i]
		case "kafka":
			broker = &pod.Containers[i]
		}
	}
	if proxy == nil || broker == nil {
		t.Fatal("want a kafka and a scram-proxy container in each pod")
	}
	for _, c := range pod.Containers {
		// The kubelet refuses to start a runAsNonRoot container whose
		// image names its user (apache/kafka's appuser) rather than a number.
		if sc := c.SecurityContext; sc.RunAsNonRoot && (sc.RunAsUser == nil || *sc.RunAsUser == 0) {
			t.Errorf("container %s: runAsNonRoot without a numeric non-zero runAsUser", c.Name)
		}
	}
	pm := mountsOf(*proxy)
	if len(proxy.Args) != 2 || proxy.Args[0] != "--config" {
		t.Fatalf("scram-proxy args %q", proxy.Args)
	}
	cfg, ok := pm.resolve(proxy.Args[1])
	if !ok {
		t.Fatalf("no mount provides the proxy's configuration %s", proxy.Args[1])
	}
	proxyCfg := checkProxyConfig(t, cfg, pm)
	if tmpl := lookup(proxyCfg, "routing.advertised_address_template"); !strings.HasPrefix(tmpl, "kafka-{id}.kafka.default.svc") {
		t.Errorf("routing.advertised_address_template %q does not name the pods through the headless Service kafka", tmpl)
	}

	bm := mountsOf(*broker)
	script, ok := bm.resolve(broker.Command[len(broker.Command)-1])
	if !ok {
		t.Fatalf("no mount provides %s", broker.Command)
	}
	secrets, ok := bm.resolve("/etc/kafka/fleet-secrets") // start.sh's default SECRETS_DIR
	if !ok {
		t.Fatal("the broker does not mount its secrets at /etc/kafka/fleet-secrets")
	}
	for ordinal := 0; ordinal < sts.Spec.Replicas; ordinal++ {
		pod := fmt.Sprintf("%s-%d", sts.Metadata.Name, ordinal)
		env := []string{"HOSTNAME=" + pod, "DATA_DIR=" + t.TempDir(), "SECRETS_DIR=" + secrets}
		vars := map[string]string{}
		for _, e := range broker.Env {
			v := e.Value
			if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
				v = map[string]string{"metadata.name": pod, "metadata.namespace": "default"}[e.ValueFrom.FieldRef.FieldPath]
			}
			// Kubernetes expands $(VAR) from the variables before it.
			v = regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(v, func(s string) string { return vars[s[2:len(s)-1]] })
			vars[e.Name] = v
			env = append(env, e.Name+"="+v)
		}
		r := runStartScript(t, script, env)
		checkBroker(t, r, fmt.Sprint(ordinal), proxyCfg, secrets)
		checkTokenKey(t, proxyCfg, pm, r.props["delegation.token.secret.key"])
		if want := pod + ".kafka.default.svc.cluster.local:"; !strings.Contains(r.props["advertised.listeners"], want) {
			t.Errorf("pod %s advertises %s", pod, r.props["advertised.listeners"])
		}
	}

	// kubectl renders the kustomization (offline) when it is installed.
	if _, err := exec.LookPath("kubectl"); err != nil {
		t.Log("kubectl not installed: kustomization not rendered")
		return
	}
	out, err := exec.Command("kubectl", "kustomize", dir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	if !regexp.MustCompile(`(?m)^\s+name: scram-proxy-[a-z0-9]{10}$`).Match(out) {
		t.Errorf("kubectl kustomize did not give the StatefulSet the generated ConfigMap and Secret:\n%s", out)
	}
}

func readYAML(t *testing.T, p string, v any) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// TestDeployBrokerFilesShared: the compose and Kubernetes brokers run the
// same start.sh and server.properties.
func TestDeployBrokerFilesShared(t *testing.T) {
	for _, f := range []string{"start.sh", "server.properties"} {
		a, err := os.ReadFile(filepath.Join(deployDir, "compose", "broker", f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "broker", f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("deploy/compose/broker/%s and deploy/kubernetes/broker/%s differ", f, f)
		}
	}
}

// TestDeployBrokerRefusesBadSecret: start.sh stops, without formatting or
// starting the broker, when a secret is missing or is not a plain token
// (it would be written into server.properties unescaped).
func TestDeployBrokerRefusesBadSecret(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"missing", ""},
		{"quote", "abc\"def"},
		{"empty", "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			secrets := t.TempDir()
			for _, f := range []string{"cluster-id", "kafka-password", "proxy-password", "delegation-token-secret-key"} {
				if err := os.WriteFile(filepath.Join(secrets, f), []byte("a1b2c3\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.content == "" {
				os.Remove(filepath.Join(secrets, "kafka-password"))
			} else if err := os.WriteFile(filepath.Join(secrets, "kafka-password"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			home := t.TempDir()
			if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
				t.Fatal(err)
			}
			ran := filepath.Join(home, "ran")
			for _, name := range []string{"kafka-storage.sh", "kafka-server-start.sh"} {
				if err := os.WriteFile(filepath.Join(home, "bin", name), []byte("#!/bin/bash\necho "+name+" >>"+ran+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("bash", filepath.Join(deployDir, "compose", "broker", "start.sh"))
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_HOME=" + home, "SECRETS_DIR=" + secrets,
				"DATA_DIR=" + t.TempDir(), "NODE_ID=0", "NODE_HOST=kafka-0", "CONTROLLER_QUORUM_VOTERS=0@kafka-0:9093"}
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("start.sh succeeded:\n%s", out)
			}
			if _, err := os.Stat(ran); err == nil {
				b, _ := os.ReadFile(ran)
				t.Fatalf("start.sh ran %s before failing", b)
			}
		})
	}
}
