package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	"github.com/vpnfacade/vpnfacade/internal/redistest"
)

// durationKeys are the log keys whose values are durations.
var durationKeys = map[string]bool{"duration": true, "retry_in": true, "refresh_in": true, "ttl": true, "expires_in": true}

// checkJSONLine decodes one log line token by token (map decoding would
// hide a repeated key) and returns an error when it is not one JSON object,
// repeats a key in any object, or holds a duration that is not a string
// like "15s". It reports which duration keys it saw.
func checkJSONLine(line string, seen map[string]bool) error {
	dec := json.NewDecoder(strings.NewReader(line))
	dec.UseNumber()
	if err := checkValue(dec, "", seen); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("more than one JSON value on the line")
	}
	return nil
}

func checkValue(dec *json.Decoder, key string, seen map[string]bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if durationKeys[key] {
		s, ok := tok.(string)
		if !ok {
			return fmt.Errorf("duration %q is %v, not a string", key, tok)
		}
		if _, err := time.ParseDuration(s); err != nil {
			return fmt.Errorf("duration %q is %q: %v", key, s, err)
		}
		seen[key] = true
	}
	switch tok {
	case json.Delim('{'):
		keys := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k := kt.(string)
			if keys[k] {
				return fmt.Errorf("key %q appears twice", k)
			}
			keys[k] = true
			if err := checkValue(dec, k, seen); err != nil {
				return err
			}
		}
		_, err := dec.Token() // }
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, "", seen); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ]
		return err
	}
	return nil
}

func TestCheckJSONLineFindsDuplicatesAndRawDurations(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		`{"component":"store","component":"store.redis"}`,
		`{"a":{"b":1,"b":2}}`,
		`{"retry_in":15000000000}`,
		`redis: 2026/01/01 00:00:00 pool.go:770: connection pool: retrying`,
		`{"a":1}{"b":2}`,
	} {
		if err := checkJSONLine(bad, map[string]bool{}); err == nil {
			t.Errorf("checkJSONLine(%s) accepted it", bad)
		}
	}
	if err := checkJSONLine(`{"msg":"x","retry_in":"15s","a":[{"b":1},{"b":2}]}`, map[string]bool{}); err != nil {
		t.Errorf("a good line: %v", err)
	}
}

var pprofLine = regexp.MustCompile(`"msg":"pprof listening","addr":"(http://[^"]+)"`)

// TestLogsAreJSONWithoutSecrets runs the binary with its Redis password in
// --redis-url, kills and restarts Redis during the run, and checks every
// line the process wrote: one JSON object with unique keys, durations as
// strings, and never the password (nor on the pprof command line page).
func TestLogsAreJSONWithoutSecrets(t *testing.T) {
	t.Parallel()
	const password = "Redis-Pw-7f3a9c"
	srv := redistest.Start(t, "--requirepass", password)
	redisURL := "redis://:" + password + "@" + srv.Addr()
	s := startSim(t, 40, ec2sim.Options{})
	// A refresh's write to the killed Redis fails only after go-redis's
	// retries (about 2 s of refused dials and backoff), and a refresh cut
	// short by the end of the writer's term is not a failed refresh. The
	// term lasts until the lease TTL after its last renewal: with a TTL of
	// a few seconds, a refresh that starts a moment after the kill is cut
	// short, and no refresh fails. A long TTL keeps the term through the
	// outage, so that the next refresh fails on Redis and says so.
	f := startFacadeProcess(t, s, redisURL, nil, "--refresh-interval", "1s", "--lease-ttl", "1m", "--pprof-listen", "127.0.0.1:0")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the service's output:\n%s", f.Output())
		}
	})

	waitUntil(t, 30*time.Second, "a first snapshot", func() bool { v, _ := publishedVersions(t, f); return len(v) > 0 })

	m := pprofLine.FindStringSubmatch(f.Output())
	if m == nil {
		t.Fatalf("no pprof listening line:\n%s", f.Output())
	}
	res, err := http.Get(m[1] + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	cmdline, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if strings.Contains(string(cmdline), password) || !strings.Contains(string(cmdline), "redis://REDACTED@"+srv.Addr()) {
		t.Errorf("/debug/pprof/cmdline = %q; want the Redis URL with its credentials redacted", cmdline)
	}

	srv.Kill()
	waitUntil(t, 30*time.Second, "the store to log that Redis cannot be read", func() bool {
		return f.Count("redis cannot be read") > 0
	})
	waitUntil(t, 30*time.Second, "a refresh to fail on Redis", func() bool {
		return len(jsonLines(t, f, "refresh failed; retrying after a backoff")) > 0
	})
	before, _ := publishedVersions(t, f)
	srv.Restart()
	waitUntil(t, 60*time.Second, "a snapshot published after Redis came back", func() bool {
		v, _ := publishedVersions(t, f)
		return len(v) > len(before)
	})
	if err := f.Stop(15 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}

	out := f.Output()
	if strings.Contains(out, password) {
		t.Errorf("the output shows the Redis password:\n%s", out)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		if err := checkJSONLine(sc.Text(), seen); err != nil {
			t.Errorf("line %d: %v:\n%s", lines, err, sc.Text())
		}
		if strings.Contains(sc.Text(), `"err":`) {
			t.Errorf("line %d uses the key err, want error:\n%s", lines, sc.Text())
		}
	}
	if !seen["duration"] || !seen["retry_in"] {
		t.Errorf("durations seen %v; want at least duration (snapshot published) and retry_in (refresh failed)", seen)
	}
	if !strings.Contains(out, `"msg":"go-redis: `) {
		t.Errorf("no go-redis line in the output while Redis was down; want its pool notes logged as JSON:\n%s", out)
	}
	t.Logf("%d log lines checked", lines)
}
