package faultserver

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

// flipped returns content [off, off+n) of path as the corruption of
// [lo, hi) should send it: computed here from the true content, not by
// the server's code.
func flipped(t *testing.T, s *Server, path string, off, n, lo, hi int64) []byte {
	t.Helper()
	b := content(t, s, path, off, n)
	for i := range b {
		if o := off + int64(i); o >= lo && o < hi {
			b[i] ^= 0xff
		}
	}
	return b
}

func TestCorrupt(t *testing.T) {
	t.Parallel()
	// The corrupted range crosses the boundary of the unthrottled 256 KiB
	// writes of a whole response (262144) in most cases.
	const lo, n = 262000, 5000
	for _, tt := range []struct {
		name       string
		faults     Faults
		rng        string // Range header, "" for none
		status     int
		off, len   int64 // the body's content range
		corrupted  bool
		wantFault  string
		onlyPrefix bool // the body is cut short by a connection fault
	}{
		{name: "whole content", rng: "", status: 200, off: 0, len: testSize, corrupted: true, wantFault: "corrupt"},
		{name: "range over the start", rng: "bytes=261000-262999", status: 206, off: 261000, len: 2000, corrupted: true, wantFault: "corrupt"},
		{name: "range over the end", rng: "bytes=266000-269999", status: 206, off: 266000, len: 4000, corrupted: true, wantFault: "corrupt"},
		{name: "range inside", rng: "bytes=263000-263099", status: 206, off: 263000, len: 100, corrupted: true, wantFault: "corrupt"},
		{name: "range around", rng: "bytes=200000-299999", status: 206, off: 200000, len: 100000, corrupted: true, wantFault: "corrupt"},
		{name: "range exactly", rng: fmt.Sprintf("bytes=%d-%d", lo, lo+n-1), status: 206, off: lo, len: n, corrupted: true, wantFault: "corrupt"},
		{name: "range just before", rng: fmt.Sprintf("bytes=0-%d", lo-1), status: 206, off: 0, len: lo, wantFault: ""},
		{name: "range just after", rng: fmt.Sprintf("bytes=%d-", lo+n), status: 206, off: lo + n, len: testSize - lo - n, wantFault: ""},
		{name: "suffix range far after", rng: "bytes=-10", status: 206, off: testSize - 10, len: 10, wantFault: ""},
		{name: "paced in small writes", faults: Faults{Rate: 200 << 20}, rng: "bytes=200000-299999", status: 206, off: 200000, len: 100000, corrupted: true, wantFault: "corrupt"},
		{name: "shared bucket", faults: Faults{ServerRate: 200 << 20}, rng: "bytes=200000-299999", status: 206, off: 200000, len: 100000, corrupted: true, wantFault: "corrupt"},
		{name: "200 for a range", faults: Faults{Always200: true}, rng: "bytes=0-9", status: 200, off: 0, len: testSize, corrupted: true, wantFault: "corrupt"},
		{name: "no ranges, range elsewhere", faults: Faults{NoRanges: true}, rng: "bytes=0-9", status: 200, off: 0, len: testSize, corrupted: true, wantFault: "corrupt"},
		{name: "wrong content range", faults: Faults{WrongContentRange: true}, rng: fmt.Sprintf("bytes=%d-%d", lo-1, lo-1), status: 206, off: lo, len: 1, corrupted: true, wantFault: "corrupt"},
		{name: "truncated after it", faults: Faults{TruncateAfter: 300000}, rng: "", status: 200, off: 0, len: 300000, corrupted: true, wantFault: "truncate", onlyPrefix: true},
		{name: "truncated before it", faults: Faults{TruncateAfter: 1000}, rng: "", status: 200, off: 0, len: 1000, wantFault: "truncate", onlyPrefix: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := tt.faults
			f.CorruptOffset, f.CorruptLength = lo, n
			s := StartTest(t, WithFaults(f), WithHosts("127.0.0.1", "127.0.0.2"))
			v, _ := s.Version(DefaultResourcePath)
			for _, host := range s.Hosts() {
				var hdr []string
				if tt.rng != "" {
					hdr = []string{"Range", tt.rng}
				}
				resp, body, err := get(t, client(t, nil), "GET", s.URLFor("http", host, DefaultResourcePath), hdr...)
				if err != nil && !tt.onlyPrefix {
					t.Fatalf("%s: %v", host, err)
				}
				if resp.StatusCode != tt.status || int64(len(body)) != tt.len {
					t.Fatalf("%s: %d with %d bytes, want %d with %d", host, resp.StatusCode, len(body), tt.status, tt.len)
				}
				if got := resp.Header.Get("ETag"); got != v.ETag {
					t.Errorf("%s: ETag %q, want the true content's %q", host, got, v.ETag)
				}
				want := flipped(t, s, DefaultResourcePath, tt.off, tt.len, lo, lo+n)
				if !bytes.Equal(body, want) {
					t.Errorf("%s: body differs from the content with [%d, %d) flipped", host, lo, lo+n)
				}
				if clean := content(t, s, DefaultResourcePath, tt.off, tt.len); bytes.Equal(body, clean) == tt.corrupted {
					t.Errorf("%s: body equals the true content: %v, want %v", host, bytes.Equal(body, clean), !tt.corrupted)
				}
			}
			s.Close() // waits for the handlers, which log as they return
			log := s.Requests()
			if len(log) != 2 {
				t.Fatalf("%d requests logged, want 2", len(log))
			}
			for _, r := range log {
				if r.Fault != tt.wantFault {
					t.Errorf("%s: logged fault %q, want %q", r.Host, r.Fault, tt.wantFault)
				}
			}
		})
	}
}

func TestCorruptGzip(t *testing.T) {
	t.Parallel()
	const lo, n = 1000, 70000
	s := StartTest(t, WithFaults(Faults{Gzip: true, CorruptOffset: lo, CorruptLength: n}))
	resp, body := mustGet(t, client(t, nil), "GET", s.URL(DefaultResourcePath), "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, flipped(t, s, DefaultResourcePath, 0, testSize, lo, lo+n)) {
		t.Errorf("gunzipped body (%d bytes, %v) differs from the content with [%d, %d) flipped", len(plain), err, lo, lo+n)
	}
	s.Close()
	if log := s.Requests(); len(log) != 1 || log[0].Fault != "corrupt" {
		t.Errorf("log %+v, want one request with fault corrupt", log)
	}
}

func TestCorruptEdges(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		off, n   int64
		lo, hi   int64 // expected flipped range, clipped to the content
		wantHits bool
	}{
		{"at the start", 0, 10, 0, 10, true},
		{"past the end", testSize - 5, 100, testSize - 5, testSize, true},
		{"beyond the content", testSize, 100, 0, 0, false},
		{"huge length", testSize - 3, 1<<63 - 1, testSize - 3, testSize, true},
		{"zero length", 100, 0, 0, 0, false},
		{"negative offset", -5, 10, 0, 5, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := StartTest(t, WithFaults(Faults{CorruptOffset: tt.off, CorruptLength: tt.n}))
			_, body := mustGet(t, client(t, nil), "GET", s.URL(DefaultResourcePath))
			if !bytes.Equal(body, flipped(t, s, DefaultResourcePath, 0, testSize, tt.lo, tt.hi)) {
				t.Errorf("body differs from the content with [%d, %d) flipped", tt.lo, tt.hi)
			}
			s.Close()
			if log := s.Requests(); len(log) != 1 || (log[0].Fault == "corrupt") != tt.wantHits {
				t.Errorf("log %+v, want fault corrupt: %v", log, tt.wantHits)
			}
		})
	}
}

func TestServerRate(t *testing.T) {
	// Not parallel: it measures time, and only ever asserts that bytes did
	// not go out faster than the cap allows, which holds however slow the
	// machine is.
	const (
		size  = 1 << 20
		conns = 4
		rate  = 4 << 20
	)
	s := StartTest(t, WithHosts("127.0.0.1", "127.0.0.2"), WithFaults(Faults{ServerRate: rate}))
	burst := pacedChunk(rate)
	c := client(t, nil)
	begin := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		url := s.URLFor("http", s.Hosts()[i%2], DefaultResourcePath)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := c.Get(url)
			if err != nil {
				errs <- err
				return
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err == nil && n != size {
				err = fmt.Errorf("%s: read %d bytes, want %d", url, n, size)
			}
			errs <- err
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// While the downloads run, the bytes the server has sent stay within
	// what the bucket allows since begin: its burst plus rate per second.
	samples := 0
	for tick := time.NewTicker(20 * time.Millisecond); ; {
		select {
		case <-done:
			tick.Stop()
		case <-tick.C:
			sent := s.Stats().BytesServed
			elapsed := time.Since(begin)
			if allowed := burst + int64(elapsed.Seconds()*rate); sent > allowed {
				t.Errorf("after %v, %d bytes sent; the cap allows %d", elapsed, sent, allowed)
			}
			samples++
			continue
		}
		break
	}
	d := time.Since(begin)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // the last bytes are counted after the client has them
	st := s.Stats()
	t.Logf("%d x %d bytes over 2 hosts at ServerRate %d: %v (%.2f MiB/s), %d samples", conns, size, rate, d, float64(st.BytesServed)/d.Seconds()/(1<<20), samples)
	if st.BytesServed != conns*size || st.PeakRequests != conns {
		t.Errorf("served %d bytes, %d requests at once; want %d, %d", st.BytesServed, st.PeakRequests, conns*size, conns)
	}
	// 5% off for the rounding of clocks and timers.
	if minD := time.Duration(conns*size-burst) * time.Second / rate * 95 / 100; d < minD {
		t.Errorf("%d parallel downloads of %d bytes took %v; at %d B/s in all they need at least %v", conns, size, d, rate, minD)
	}
}

func TestServerRateWithRate(t *testing.T) {
	// Not parallel: it measures time. Both caps apply: one response at
	// Rate 2 MiB/s under a ServerRate of 8 MiB/s still takes half a second
	// per MiB, and with ServerRate 1 MiB/s under a Rate of 8 MiB/s, one.
	for _, f := range []Faults{{Rate: 2 << 20, ServerRate: 8 << 20}, {Rate: 8 << 20, ServerRate: 1 << 20}} {
		s := StartTest(t, WithFaults(f))
		slow := min(f.Rate, f.ServerRate)
		begin := time.Now()
		_, body := mustGet(t, client(t, nil), "GET", s.URL(DefaultResourcePath))
		d := time.Since(begin)
		minD := time.Duration(int64(len(body))-pacedChunk(slow)) * time.Second / time.Duration(slow) * 95 / 100
		if len(body) != testSize || d < minD {
			t.Errorf("%+v: %d bytes in %v, want %d in at least %v", f, len(body), d, testSize, minD)
		}
		s.Close()
	}
}

func TestSharedPacer(t *testing.T) {
	t.Parallel()
	const rate, chunk = 10 << 20, 100 << 10
	p := newSharedPacer(rate, chunk)
	t0 := time.Unix(1000, 0)
	// Four writers reserve a chunk each in turn, all at t0: the k-th
	// reservation is due when k-1 chunks beyond the burst have drained.
	for k := int64(1); k <= 8; k++ {
		want := time.Duration((k-1)*chunk) * time.Second / rate
		if got := p.reserve(chunk, t0); got != want {
			t.Errorf("reservation %d at t0: wait %v, want %v", k, got, want)
		}
	}
	// Later reservations queue behind the earlier ones, whenever made.
	at := t0.Add(50 * time.Millisecond)
	if got, want := p.reserve(chunk, at), time.Duration(8*chunk)*time.Second/rate-50*time.Millisecond; got != want {
		t.Errorf("reservation 9: wait %v, want %v", got, want)
	}
	// An idle bucket refills to its burst only, not to all the time idle.
	idle := t0.Add(time.Hour)
	if got := p.reserve(chunk, idle); got > 0 {
		t.Errorf("first reservation after idling: wait %v, want none", got)
	}
	if got, want := p.reserve(chunk, idle), time.Duration(chunk)*time.Second/rate; got != want {
		t.Errorf("second reservation after idling: wait %v, want %v", got, want)
	}
}

func TestWithHandler(t *testing.T) {
	t.Parallel()
	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	// Faults that would change every counted request do not touch it.
	s := StartTest(t, WithHosts("127.0.0.1", "127.0.0.2"), WithHandler("/_hello", hello),
		WithFaults(Faults{FailRequests: 100, Status: map[string]int{"/_hello": 404}}))
	c := client(t, nil)
	for _, host := range s.Hosts() {
		resp, body := mustGet(t, c, "GET", s.URLFor("http", host, "/_hello")+"?x=1")
		if resp.StatusCode != 200 || string(body) != "hello" {
			t.Errorf("%s: %d %q, want 200 hello", host, resp.StatusCode, body)
		}
	}
	if st := s.Stats(); st.Requests != 0 || st.BytesServed != 0 || len(s.Requests()) != 0 {
		t.Errorf("handler requests counted: %+v, log %v", st, s.Requests())
	}
	if resp, _ := mustGet(t, c, "GET", s.URL(DefaultResourcePath)); resp.StatusCode != 503 || s.Stats().Requests != 1 {
		t.Errorf("resource request: %d, %d counted; want 503, 1", resp.StatusCode, s.Stats().Requests)
	}
	for name, opts := range map[string][]Option{
		"relative path":          {WithHandler("x", hello)},
		"no handler":             {WithHandler("/x", nil)},
		"a resource's path":      {WithHandler(DefaultResourcePath, hello)},
		"a given resource's too": {WithResource(PatternResource("/r", 1, 1)), WithHandler("/r", hello)},
	} {
		if s, err := Start(opts...); err == nil {
			s.Close()
			t.Errorf("%s: got no error", name)
		}
	}
}

// TestCorruptFirstPiece: the corrupted range lands in the piece where the
// first response starts, and stays there.
func TestCorruptFirstPiece(t *testing.T) {
	const piece = 64 << 10
	s := StartTest(t, WithFaults(Faults{CorruptFirstPiece: piece, CorruptOffset: 100, CorruptLength: 50}))
	c := client(t, nil)
	get := func(from, to int64) []byte {
		req, _ := http.NewRequest("GET", s.URL(DefaultResourcePath), nil)
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, to))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// The first request starts inside piece 5: bytes 5*piece+100 to
	// 5*piece+149 are flipped, in it and in every later response.
	lo, hi := int64(5*piece+100), int64(5*piece+150)
	first := get(5*piece+10, 7*piece-1)
	if !bytes.Equal(first, flipped(t, s, DefaultResourcePath, 5*piece+10, 7*piece-(5*piece+10), lo, hi)) {
		t.Error("first response: not the content with the placed range flipped")
	}
	whole := get(0, testSize-1)
	if !bytes.Equal(whole, flipped(t, s, DefaultResourcePath, 0, testSize, lo, hi)) {
		t.Error("a later response: the range moved or vanished")
	}
	clean := get(0, 5*piece-1)
	if !bytes.Equal(clean, flipped(t, s, DefaultResourcePath, 0, 5*piece, 0, 0)) {
		t.Error("bytes outside the placed range were flipped")
	}
}
