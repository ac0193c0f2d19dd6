package download_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/faultserver"
)

// TestMain lets the test binary act as the child of TestKillResume: a
// process that downloads one file and is killed at a random instant.
func TestMain(m *testing.M) {
	if os.Getenv("DIRECTDL_KILL_CHILD") == "1" {
		os.Exit(killChild())
	}
	os.Exit(m.Run())
}

func killChild() int {
	conns, _ := strconv.Atoi(os.Getenv("DIRECTDL_CONNS"))
	c, err := download.New(download.WithPolicy(loopback), download.WithConnections(conns),
		download.WithBackoff(5*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	_, err = c.Get(context.Background(), download.Request{
		URL: os.Getenv("DIRECTDL_URL"), Path: os.Getenv("DIRECTDL_DEST"), Checksum: os.Getenv("DIRECTDL_SUM"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// TestKillResume kills a downloading process at random instants, at least
// 20 times, and resumes each time: the destination is always either absent
// or the correct file, the last run completes it, and the bytes sent over
// all runs exceed the file size by at most one checkpoint interval per
// connection per kill.
func TestKillResume(t *testing.T) {
	t.Parallel()
	const (
		size  = 48 << 20
		conns = 4
		kills = 20
		// A kill loses what each connection wrote since the last control
		// file update (256 KiB, or 20ms of data when that is more: 80 KiB
		// here) and what was in flight to it.
		lossPerConn = 512 << 10
	)
	s := faultserver.StartTest(t,
		faultserver.WithResource(faultserver.PatternResource("/big.img", 11, size)),
		faultserver.WithFaults(faultserver.Faults{Rate: 4 << 20}))
	want := sha256Of(t, s, "/big.img")
	dir := t.TempDir()
	dest := filepath.Join(dir, "big.img")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	killed, completed := 0, false
	for run := 0; !completed; run++ {
		if run > 200 {
			t.Fatalf("no completion after %d runs", run)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "DIRECTDL_KILL_CHILD=1", "DIRECTDL_URL="+s.URL("/big.img"),
			"DIRECTDL_DEST="+dest, "DIRECTDL_SUM="+want, "DIRECTDL_CONNS="+strconv.Itoa(conns))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		var kill <-chan time.Time
		if killed < kills {
			kill = time.After(time.Duration(20+rand.IntN(280)) * time.Millisecond)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("run %d failed: %v", run, err)
			}
			completed = true
		case <-kill:
			cmd.Process.Signal(syscall.SIGKILL)
			if err := <-exited; err == nil {
				completed = true // it finished just before the signal
			} else {
				killed++
			}
		}
		if _, err := os.Stat(dest); err == nil {
			if got := fileSHA256(t, dest); got != want {
				t.Fatalf("after run %d the destination holds %s, want %s or nothing", run, got, want)
			}
			completed = true
		} else if completed {
			t.Fatalf("run %d exited 0 but %s is missing", run, dest)
		}
	}
	if killed < kills {
		t.Fatalf("only %d kills before the download completed; make it slower", killed)
	}
	assertClean(t, dir, "big.img")
	sent := s.Stats().BytesServed
	if limit := int64(size + killed*conns*lossPerConn); sent > limit {
		t.Errorf("server sent %d bytes over %d kills, want at most %d (size + %d per connection per kill)",
			sent, killed, limit, lossPerConn)
	}
	t.Logf("%d kills; %d bytes sent for a %d-byte file (%.1f%% extra)", killed, sent, size, 100*float64(sent-size)/size)
}
