package kafkabed

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
)

// pom is the Maven project naming the Kafka artifacts; its kafka.version
// property is the single pin of the Kafka version.
//
//go:embed pom.xml
var pom []byte

var versionProperty = regexp.MustCompile(`<kafka\.version>([^<]+)</kafka\.version>`)

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// Version is the Apache Kafka version the test bed runs, from pom.xml.
func Version() string {
	m := versionProperty.FindSubmatch(pom)
	if m == nil {
		panic("kafkabed: pom.xml has no kafka.version property")
	}
	return string(m[1])
}

// Main classes of the broker and of the tools behind Kafka's bin/*.sh
// scripts, as they are in the pinned version's jars.
const (
	MainBroker           = "kafka.Kafka"                                                // kafka-server-start.sh
	MainStorage          = "kafka.tools.StorageTool"                                    // kafka-storage.sh
	MainTopics           = "org.apache.kafka.tools.TopicCommand"                        // kafka-topics.sh
	MainConfigs          = "kafka.admin.ConfigCommand"                                  // kafka-configs.sh
	MainAcls             = "org.apache.kafka.tools.AclCommand"                          // kafka-acls.sh
	MainDelegationTokens = "org.apache.kafka.tools.DelegationTokenCommand"              // kafka-delegation-tokens.sh
	MainConsoleProducer  = "org.apache.kafka.tools.ConsoleProducer"                     // kafka-console-producer.sh
	MainConsoleConsumer  = "org.apache.kafka.tools.consumer.ConsoleConsumer"            // kafka-console-consumer.sh
	MainConsumerGroups   = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand" // kafka-consumer-groups.sh
)

// Artifacts are the resolved Kafka jars: everything the broker, the tools
// and the Java client need, in one directory.
type Artifacts struct {
	Version string
	// Lib holds the jars.
	Lib string
}

// CacheDir is where resolved artifacts (and the PyPI clients' virtual
// environment) are kept between runs: $KAFKABED_CACHE, else scram-proxy/
// under the user cache directory (~/.cache). The variable is not named
// SCRAM_PROXY_*: the proxy refuses unknown variables of that prefix.
func CacheDir() (string, error) {
	if d := os.Getenv("KAFKABED_CACHE"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "scram-proxy"), nil
}

// Fetch returns the pinned Kafka artifacts, resolving them with Maven
// (`mvn dependency:copy-dependencies`) into the cache on first use. Maven's
// output goes to log. Concurrent callers (test packages run in parallel)
// are serialised by a lock file; a resolved directory is complete, since it
// is renamed into place only after Maven succeeded.
func Fetch(ctx context.Context, log io.Writer) (*Artifacts, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(pom)
	a := &Artifacts{Version: Version()}
	dir := filepath.Join(cache, "kafka-"+a.Version+"-"+hex.EncodeToString(sum[:4]))
	a.Lib = filepath.Join(dir, "lib")
	if complete(a.Lib) {
		return a, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) //nolint:errcheck
	if complete(a.Lib) {
		return a, nil
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return nil, errors.New("kafkabed: mvn (Apache Maven) is needed to fetch the Kafka jars: run scripts/install-test-deps.sh")
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "pom.xml"), pom, 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "mvn", "-B", "-q", "-Dstyle.color=never", "-f", filepath.Join(tmp, "pom.xml"),
		"dependency:copy-dependencies", "-DoutputDirectory="+filepath.Join(tmp, "lib"))
	out, err := cmd.CombinedOutput()
	// Some Maven builds print colour resets even in batch mode.
	_, _ = log.Write(ansiEscape.ReplaceAll(out, nil))
	if err != nil {
		return nil, fmt.Errorf("kafkabed: resolving Kafka %s with mvn: %w", a.Version, err)
	}
	if !complete(filepath.Join(tmp, "lib")) {
		return nil, fmt.Errorf("kafkabed: mvn left no kafka_2.13-%s.jar in %s", a.Version, tmp)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return a, nil
}

func complete(lib string) bool {
	ms, _ := filepath.Glob(filepath.Join(lib, "kafka_2.13-*.jar"))
	return len(ms) == 1
}

// Classpath is the class path of every jar (java's "dir/*" form).
func (a *Artifacts) Classpath() string { return filepath.Join(a.Lib, "*") }

// ToolJVM are the JVM options for short-lived tools: a small heap, and
// the client compiler only, which starts faster.
func ToolJVM() []string {
	return []string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"}
}

// Command is `java <ToolJVM> -cp <jars>[:extra] mainClass args...`, for the
// Kafka tools and for Java programs compiled against the jars. Tools log
// through log4j; with no configuration it prints errors only.
func (a *Artifacts) Command(ctx context.Context, extraClasspath []string, mainClass string, args ...string) *exec.Cmd {
	cp := strings.Join(append([]string{a.Classpath()}, extraClasspath...), string(os.PathListSeparator))
	full := append(append(ToolJVM(), "-cp", cp, mainClass), args...)
	return exec.CommandContext(ctx, javaBin(), full...)
}

// Javac compiles the Java sources in srcDir against the jars into outDir.
func (a *Artifacts) Javac(ctx context.Context, srcDir, outDir string) error {
	srcs, err := filepath.Glob(filepath.Join(srcDir, "*.java"))
	if err != nil || len(srcs) == 0 {
		return fmt.Errorf("kafkabed: no Java sources in %s", srcDir)
	}
	javac := "javac"
	if h := os.Getenv("JAVA_HOME"); h != "" {
		javac = filepath.Join(h, "bin", "javac")
	}
	args := append([]string{"-J-Xmx256m", "-nowarn", "-cp", a.Classpath(), "-d", outDir}, srcs...)
	out, err := exec.CommandContext(ctx, javac, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kafkabed: javac: %w\n%s", err, out)
	}
	return nil
}

func javaBin() string {
	if h := os.Getenv("JAVA_HOME"); h != "" {
		return filepath.Join(h, "bin", "java")
	}
	return "java"
}
