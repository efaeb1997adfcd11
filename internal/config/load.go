package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable the proxy reads:
// SCRAM_PROXY_LISTENER_ADVERTISED_ADDRESS sets listener.advertised_address.
const EnvPrefix = "SCRAM_PROXY_"

// key is one configuration leaf: its dotted name and Go type. fileAlt,
// set for secrets, names the key that reads the secret from a file.
type key struct {
	name    string
	typ     reflect.Type
	fileAlt string
}

// secret keys are refused as flags: every local user sees a process's
// arguments (ps, /proc/PID/cmdline), and so does /debug/pprof/cmdline.
func (k key) secret() bool { return k.fileAlt != "" }

// fileOnly keys (lists of structures, such as upstream.identities) have no
// flag or environment variable; they are set in the file.
func (k key) fileOnly() bool {
	return k.typ.Kind() == reflect.Slice && k.typ.Elem().Kind() == reflect.Struct
}

// keys lists every leaf of Config, in declaration order.
func keys() []key {
	var out []key
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := prefix + f.Tag.Get("mapstructure")
			if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)) {
				walk(f.Type, name+".")
				continue
			}
			k := key{name: name, typ: f.Type}
			if alt := f.Tag.Get("secret"); alt != "" {
				k.fileAlt = prefix + alt
			}
			out = append(out, k)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	return out
}

// envName maps a key to its environment variable.
func envName(k string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(k, ".", "_"))
}

// RegisterFlags adds --config and one flag per key, named by its dotted
// path (--listener.address, --sasl.mechanisms a,b, --sasl.auth_timeout 5s).
// Secrets have hidden flags, only so that Load can refuse them by name.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("config", "", "YAML configuration file")
	def := viper.New()
	setDefaults(def)
	for _, k := range keys() {
		if k.fileOnly() {
			continue
		}
		usage := "configuration key " + k.name + " (env " + envName(k.name) + ")"
		switch k.typ.Kind() {
		case reflect.Bool:
			fs.Bool(k.name, def.GetBool(k.name), usage)
		case reflect.Int:
			fs.Int(k.name, def.GetInt(k.name), usage)
		case reflect.Int64: // time.Duration
			fs.Duration(k.name, def.GetDuration(k.name), usage)
		case reflect.Slice:
			fs.StringSlice(k.name, def.GetStringSlice(k.name), usage)
		case reflect.Map:
			if k.typ.Elem().Kind() == reflect.Int {
				fs.StringToInt(k.name, nil, usage+"; N=port,...")
			} else {
				fs.StringToString(k.name, nil, usage+"; N=host:port,...")
			}
		default:
			fs.String(k.name, def.GetString(k.name), usage)
		}
		if k.secret() {
			_ = fs.MarkHidden(k.name)
		}
	}
}

func setDefaults(v *viper.Viper) {
	var m map[string]any
	_ = mapstructure.Decode(Defaults(), &m)
	for _, k := range keys() {
		v.SetDefault(k.name, lookupPath(m, k.name))
	}
}

func lookupPath(m map[string]any, path string) any {
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}

// Load builds the configuration from fs (already parsed), environ (as from
// os.Environ) and the file named by --config, with precedence flags >
// environment > file > defaults, then validates it. Unknown keys in the file
// and unknown SCRAM_PROXY_ variables are errors naming them, and so are
// secrets given as flags (they come from files or the environment).
func Load(fs *pflag.FlagSet, environ []string) (Config, error) {
	v := viper.New()
	setDefaults(v)
	known := map[string]key{}
	for _, k := range keys() {
		known[k.name] = k
	}
	var errs []error

	if path, _ := fs.GetString("config"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return Config{}, fmt.Errorf("config file: %w", err)
		}
		if err := checkFileKeys(data, known); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("config file %s: %w", path, err)
		}
	}

	env := map[string]string{}
	for _, kv := range environ {
		name, val, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(name, EnvPrefix) {
			env[name] = val
		}
	}
	byEnv := map[string]string{}
	for name, k := range known {
		if !k.fileOnly() {
			byEnv[envName(name)] = name
		}
	}
	for name := range env {
		if _, ok := byEnv[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: unknown environment variable (no such configuration key)", name))
		}
	}

	for name, k := range known {
		if k.fileOnly() {
			continue
		}
		if f := fs.Lookup(name); f != nil && f.Changed {
			if k.secret() {
				errs = append(errs, fmt.Errorf("--%s: secrets are not accepted on the command line, where every local user (ps) and /debug/pprof/cmdline can read them; set %s to a file holding it, or the environment variable %s",
					name, k.fileAlt, envName(name)))
				continue
			}
			switch k.typ.Kind() {
			case reflect.Slice:
				s, _ := fs.GetStringSlice(name)
				v.Set(name, s)
			case reflect.Map:
				v.Set(name, splitMap(strings.Trim(f.Value.String(), "[]")))
			default:
				v.Set(name, f.Value.String())
			}
			continue
		}
		if val, ok := env[envName(name)]; ok {
			switch k.typ.Kind() {
			case reflect.Slice:
				v.Set(name, splitList(val))
			case reflect.Map:
				v.Set(name, splitMap(val))
			default:
				v.Set(name, val)
			}
		}
	}

	var cfg Config
	err := v.Unmarshal(&cfg, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(),
		mapstructure.StringToSliceHookFunc(","),
	)), func(dc *mapstructure.DecoderConfig) { dc.ErrorUnused = true }) // e.g. a typo inside upstream.identities
	if err != nil {
		errs = append(errs, valueProblems(err)...)
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	return cfg, cfg.Validate()
}

// valueProblems turns the decoder's errors into one problem per key
// ("listener.max_connections: cannot parse value as 'int': ...").
func valueProblems(err error) []error {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []error
		for _, e := range joined.Unwrap() {
			out = append(out, valueProblems(e)...)
		}
		return out
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		return []error{fmt.Errorf("%s: %w", de.Name(), de.Unwrap())}
	}
	return []error{fmt.Errorf("configuration values: %w", err)}
}

// splitMap parses "k=v,k=v" (flags and environment variables for maps).
func splitMap(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range splitList(s) {
		k, val, _ := strings.Cut(kv, "=")
		out[strings.TrimSpace(k)] = strings.TrimSpace(val)
	}
	return out
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkFileKeys walks the YAML document and reports every key that is not a
// configuration key or section, with its line.
func checkFileKeys(data []byte, known map[string]key) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // an empty file sets nothing
	}
	sections := map[string]bool{}
	for name := range known {
		parts := strings.Split(name, ".")
		for i := 1; i < len(parts); i++ {
			sections[strings.Join(parts[:i], ".")] = true
		}
	}
	var errs []error
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			if prefix == "" {
				errs = append(errs, fmt.Errorf("line %d: the document must be a mapping", n.Line))
			}
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			name := prefix + kn.Value
			switch {
			case sections[name]:
				if vn.Kind != yaml.MappingNode {
					errs = append(errs, fmt.Errorf("%s (line %d): must be a mapping of keys", name, kn.Line))
					continue
				}
				walk(vn, name+".")
			case known[name].name != "":
				if known[name].typ.Kind() == reflect.Map && vn.Kind != yaml.MappingNode && vn.Tag != "!!null" {
					errs = append(errs, fmt.Errorf("%s (line %d): must be a mapping of node id to value", name, kn.Line))
				}
			default:
				errs = append(errs, fmt.Errorf("%s (line %d): unknown configuration key", name, kn.Line))
			}
		}
	}
	walk(doc.Content[0], "")
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}
