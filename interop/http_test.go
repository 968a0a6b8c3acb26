package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ustack/ustack"
)

// bodyHandler serves GET /bytes/N: N bytes of stream(N, N), with their
// SHA-256 in the X-Body-Sha256 trailer (as `ustack serve` does), and
// GET /barrier/N: a short body, sent only once N requests are being
// served at the same time (or after a minute), which proves they were
// in parallel.
type bodyHandler struct {
	mu       sync.Mutex
	inflight int
	maxSeen  int
	arrived  chan struct{} // closed when inflight first reaches the barrier
	barrier  int
}

func (h *bodyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/bytes/"):
		n, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/bytes/"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Trailer", "X-Body-Sha256")
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		sum := sha256.New()
		if _, err := io.CopyBuffer(io.MultiWriter(w, sum), stream(uint64(n), n), make([]byte, 256<<10)); err != nil {
			return
		}
		w.Header().Set("X-Body-Sha256", hex.EncodeToString(sum.Sum(nil)))
	case strings.HasPrefix(r.URL.Path, "/barrier/"):
		h.mu.Lock()
		h.inflight++
		h.maxSeen = max(h.maxSeen, h.inflight)
		if h.inflight == h.barrier {
			close(h.arrived)
		}
		arrived := h.arrived
		h.mu.Unlock()
		select {
		case <-arrived:
		case <-time.After(time.Minute):
		case <-r.Context().Done():
		}
		fmt.Fprintf(w, "%s\n", r.URL.Path)
		h.mu.Lock()
		h.inflight--
		h.mu.Unlock()
	default:
		http.NotFound(w, r)
	}
}

// serveHTTP runs an HTTP server on the stack at :80 until the test ends.
func serveHTTP(t *testing.T, s *ustack.Stack, barrier int) *bodyHandler {
	t.Helper()
	ln, err := s.Listen("tcp", ":80")
	if err != nil {
		t.Fatal(err)
	}
	h := &bodyHandler{barrier: barrier, arrived: make(chan struct{})}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return h
}

// curlBody fetches url with the kernel's curl and returns the size and
// SHA-256 of the body, the HTTP status and the number of connections
// curl opened.
func curlBody(t *testing.T, e *env, url string, timeout time.Duration) (n int64, sum [32]byte, code, connects int) {
	t.Helper()
	h := sha256.New()
	cw := &countWriter{w: h}
	p := startProc(t, e.kernel, nil, cw, "curl", "-sS", "--max-time", strconv.Itoa(int(timeout.Seconds())),
		"-w", "%{stderr}status=%{http_code} connects=%{num_connects}\n", url)
	if err := p.wait(timeout + 10*time.Second); err != nil {
		t.Fatalf("curl %s: %v\n%s", url, err, p.output())
	}
	m := regexp.MustCompile(`status=(\d+) connects=(\d+)`).FindStringSubmatch(p.output())
	if m == nil {
		t.Fatalf("curl %s: no status in\n%s", url, p.output())
	}
	code, _ = strconv.Atoi(m[1])
	connects, _ = strconv.Atoi(m[2])
	h.Sum(sum[:0])
	return cw.n, sum, code, connects
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// TestCurlToStack: the kernel's curl fetches from an HTTP server on the
// stack: 1 KiB and 200 MiB bodies (SHA-256 recomputed), 200 requests in
// parallel (all in flight at once), and several requests on one
// keep-alive connection.
func TestCurlToStack(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "curl")
		e := newEnv(t, kind, envConfig{})
		const parallel = 200
		h := serveHTTP(t, e.s, parallel)
		base := fmt.Sprintf("http://%v", stackAddr.Addr())

		for _, size := range []int64{1 * kib, 200 * mib} {
			t0 := time.Now()
			n, sum, code, _ := curlBody(t, e, fmt.Sprintf("%s/bytes/%d", base, size), 5*time.Minute)
			d := time.Since(t0)
			if code != 200 || n != size || sum != streamSum(uint64(size), size) {
				t.Fatalf("curl /bytes/%d: status %d, %d bytes, SHA-256 %s (want %s)", size, code, n, short(sum), short(streamSum(uint64(size), size)))
			}
			t.Logf("curl %d bytes from the stack in %v (%.0f Mbit/s)", size, d.Round(time.Millisecond), mbps(n, d))
		}

		// 200 transfers at once, each on its own connection: the server
		// answers none until all 200 are in.
		before := e.s.Stats().TCP.PassiveOpens
		args := []string{"-sS", "--max-time", "120", "--no-progress-meter", "--parallel", "--parallel-immediate", "--parallel-max", strconv.Itoa(parallel),
			"-w", "%{http_code} %{url_effective}\n"}
		for i := range parallel {
			args = append(args, "-o", "/dev/null", fmt.Sprintf("%s/barrier/%d", base, i))
		}
		out, err := run(e.kernel, 3*time.Minute, "curl", args...)
		if err != nil {
			t.Fatalf("curl --parallel: %v", err)
		}
		// In parallel mode curl 7.88 draws its progress meter (on
		// stderr, mixed into out) even with -s: count the -w lines.
		ok := len(regexp.MustCompile(`(?m)200 `+regexp.QuoteMeta(base)+`/barrier/\d+$`).FindAllString(out, -1))
		opens := e.s.Stats().TCP.PassiveOpens - before
		h.mu.Lock()
		maxSeen := h.maxSeen
		h.mu.Unlock()
		if ok != parallel || maxSeen != parallel {
			t.Errorf("curl --parallel: %d of %d answered 200, at most %d in flight at once, %d connections\n%s", ok, parallel, maxSeen, opens, out)
		}
		t.Logf("%d parallel requests: %d connections accepted, %d in flight at once", parallel, opens, maxSeen)

		// Keep-alive: five URLs in one curl run share one connection.
		before = e.s.Stats().TCP.PassiveOpens
		args = []string{"-sS", "--max-time", "60", "-w", "%{http_code} %{num_connects} %{size_download}\n"}
		for i := range 5 {
			args = append(args, "-o", "/dev/null", fmt.Sprintf("%s/bytes/%d", base, 1000+i))
		}
		out, err = run(e.kernel, 2*time.Minute, "curl", args...)
		if err != nil {
			t.Fatal(err)
		}
		want := "200 1 1000\n200 0 1001\n200 0 1002\n200 0 1003\n200 0 1004\n"
		if out != want {
			t.Errorf("curl keep-alive: got\n%swant (status, new connections, size)\n%s", out, want)
		}
		if opens := e.s.Stats().TCP.PassiveOpens - before; opens != 1 {
			t.Errorf("keep-alive: the stack accepted %d connections for five requests, want 1", opens)
		}
	})
}

// nginxConf is a configuration for nginx in a directory of its own, in the
// foreground, as one process (so the test can stop it by its PID).
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 100000;
	keepalive_timeout 120s;
	sendfile on;
	types { application/octet-stream bin; }
	server {
		listen %[2]s:8080 backlog=1024;
		root %[1]s/www;
	}
}
`

// startNginx runs nginx in the kernel's namespace serving files of the
// given sizes as /SIZE.bin; it returns their SHA-256s.
func startNginx(t *testing.T, e *env, sizes ...int64) map[int64][32]byte {
	t.Helper()
	return startNginxAt(t, e, kernelAddr.Addr().String(), sizes...)
}

// startNginxAt is startNginx listening on host (an IPv4 address, or an
// IPv6 one in brackets) at port 8080.
func startNginxAt(t *testing.T, e *env, host string, sizes ...int64) map[int64][32]byte {
	t.Helper()
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	sums := map[int64][32]byte{}
	for _, size := range sizes {
		f, err := os.Create(filepath.Join(www, fmt.Sprintf("%d.bin", size)))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(io.MultiWriter(f, h), stream(uint64(size)+7, size), make([]byte, 1<<20)); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		var s [32]byte
		h.Sum(s[:0])
		sums[size] = s
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, host)), 0o644); err != nil {
		t.Fatal(err)
	}
	// nginx runs as root here and must read the files: the temporary
	// directory is private to root already.
	p := startProc(t, e.kernel, nil, nil, "nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", conf)
	addr := host + ":8080"
	if !waitFor(20*time.Second, func() bool {
		c, err := kernelDial(e.kernel, addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}) {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("nginx did not start listening on %s:\n%s\n%s", addr, p.output(), log)
	}
	return sums
}

// TestStackClientToNginx: the stack's net/http client fetches 1 KiB and
// 200 MiB files from nginx in the kernel's namespace (SHA-256 checked),
// reuses one keep-alive connection for requests in sequence, and runs 200
// requests in parallel.
func TestStackClientToNginx(t *testing.T) {
	forLinks(t, bothLinks, func(t *testing.T, kind linkKind) {
		need(t, kind, "nginx")
		e := newEnv(t, kind, envConfig{})
		sums := startNginx(t, e, 1*kib, 200*mib)
		var dials atomic.Int64
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return e.s.DialContext(ctx, network, addr)
			},
			MaxIdleConnsPerHost: 200,
			DisableCompression:  true,
		}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
		base := fmt.Sprintf("http://%v:8080", kernelAddr.Addr())
		get := func(size int64) error {
			resp, err := client.Get(fmt.Sprintf("%s/%d.bin", base, size))
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			n, sum, err := hashReader(resp.Body)
			if err != nil {
				return fmt.Errorf("reading %d.bin after %d bytes: %w", size, n, err)
			}
			if resp.StatusCode != 200 || n != size || sum != sums[size] {
				return fmt.Errorf("%d.bin: status %d, %d bytes, SHA-256 %s, want %s", size, resp.StatusCode, n, short(sum), short(sums[size]))
			}
			return nil
		}
		for _, size := range []int64{1 * kib, 200 * mib} {
			t0 := time.Now()
			if err := get(size); err != nil {
				t.Fatal(err)
			}
			d := time.Since(t0)
			t.Logf("the stack fetched %d bytes from nginx in %v (%.0f Mbit/s)", size, d.Round(time.Millisecond), mbps(size, d))
		}

		// Keep-alive: requests in sequence reuse the idle connection.
		tr.CloseIdleConnections()
		dials.Store(0)
		before := e.s.Stats().TCP.ActiveOpens
		for range 10 {
			if err := get(1 * kib); err != nil {
				t.Fatal(err)
			}
		}
		if d, opens := dials.Load(), e.s.Stats().TCP.ActiveOpens-before; d != 1 || opens != 1 {
			t.Errorf("ten requests in sequence: %d dials, %d connections opened, want 1", d, opens)
		}

		// 200 requests in parallel, on as many connections as it takes.
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- get(1 * kib)
			}()
		}
		wg.Wait()
		close(errs)
		var failed []string
		for err := range errs {
			if err != nil {
				failed = append(failed, err.Error())
			}
		}
		if len(failed) > 0 {
			t.Errorf("%d of 200 parallel requests failed; first: %s", len(failed), failed[0])
		}
		t.Logf("200 parallel requests to nginx over %d connections", dials.Load())
	})
}
