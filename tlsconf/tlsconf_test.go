package tlsconf

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/redis/rueidis"
)

func parse(t *testing.T, url string) rueidis.ClientOption {
	t.Helper()
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// writeCA writes testCA to a file and returns its path.
func writeCA(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f, []byte(testCA), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestApply(t *testing.T) {
	ca := writeCA(t)

	// Nothing set, plaintext URL: unchanged.
	opt := parse(t, "redis://h1:6379")
	if err := (Files{}).Apply(&opt); err != nil || opt.TLSConfig != nil {
		t.Fatalf("zero Files: %v, %v", err, opt.TLSConfig)
	}
	// A CA file turns TLS on for redis://, with the host as server name.
	opt = parse(t, "redis://h1:6379")
	if err := (Files{CAFile: ca}).Apply(&opt); err != nil || opt.TLSConfig == nil ||
		opt.TLSConfig.ServerName != "h1" || opt.TLSConfig.RootCAs == nil || opt.TLSConfig.MinVersion == 0 {
		t.Fatalf("CA file: %v, %+v", err, opt.TLSConfig)
	}
	// IPv6 host.
	opt = parse(t, "rediss://[::1]:6380")
	opt.TLSConfig.ServerName = ""
	if err := (Files{CAFile: ca}).Apply(&opt); err != nil || opt.TLSConfig.ServerName != "::1" {
		t.Fatalf("IPv6: %v, %q", err, opt.TLSConfig.ServerName)
	}
	// Sentinel: the Sentinels get the configuration with their host name,
	// the primary without one; also with system CAs (no files).
	for _, f := range []Files{{}, {CAFile: ca}} {
		opt = parse(t, "rediss://s1:26379?master_set=m")
		if err := f.Apply(&opt); err != nil {
			t.Fatal(err)
		}
		if opt.Sentinel.TLSConfig == nil || opt.Sentinel.TLSConfig.ServerName != "s1" || opt.TLSConfig.ServerName != "" {
			t.Fatalf("sentinel with %+v: sentinel %+v, primary %+v", f, opt.Sentinel.TLSConfig, opt.TLSConfig)
		}
	}
	// skip_verify needs the opt-in.
	opt = parse(t, "rediss://h1?skip_verify=true")
	if err := (Files{}).Apply(&opt); !errors.Is(err, ErrConfig) {
		t.Fatalf("skip_verify alone: %v", err)
	}
	opt = parse(t, "rediss://h1?skip_verify=true")
	if err := (Files{InsecureSkipVerify: true}).Apply(&opt); err != nil || !opt.TLSConfig.InsecureSkipVerify {
		t.Fatalf("skip_verify with opt-in: %v", err)
	}
}

func TestFilesFromEnv(t *testing.T) {
	env := map[string]string{"REDIS_TLS_CA_FILE": "a", "REDIS_TLS_CERT_FILE": "b", "REDIS_TLS_KEY_FILE": "c", "REDIS_TLS_INSECURE_SKIP_VERIFY": "true"}
	f := FilesFromEnv(func(k string) string { return env[k] })
	if f != (Files{CAFile: "a", CertFile: "b", KeyFile: "c", InsecureSkipVerify: true}) || !f.Enabled() {
		t.Fatalf("%+v", f)
	}
	env["REDIS_TLS_INSECURE_SKIP_VERIFY"] = "yes" // only 1 and true count
	if FilesFromEnv(func(k string) string { return env[k] }).InsecureSkipVerify {
		t.Fatal(`"yes" turned verification off`)
	}
	if (Files{}).Enabled() {
		t.Fatal("zero Files enabled")
	}
}

func TestClassifyLeavesOthers(t *testing.T) {
	other := errors.New("dial tcp: connection refused")
	if Classify(other) != other || Classify(nil) != nil {
		t.Fatal("Classify changed an unrelated error")
	}
	e := &Error{Kind: ErrExpired, Err: other}
	if !errors.Is(e, ErrExpired) || !errors.Is(e, other) || errors.Is(e, ErrHostname) || Classify(e) != error(e) {
		t.Fatalf("Error matching: %v", e)
	}
}
