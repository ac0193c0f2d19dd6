package agent_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/directdl/directdl/examples/agent/agent"
)

// seeds adds every file of testdata/requests to f.
func seeds(f *testing.F) {
	paths, err := filepath.Glob(filepath.Join("testdata", "requests", "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/requests: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(""))
	f.Add([]byte("{"))
	f.Add([]byte(`{"url":5}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[1,2]`))
}

// badRequest fails unless err is nil or a *BadRequestError with a message.
func badRequest(t *testing.T, err error) {
	t.Helper()
	var bre *agent.BadRequestError
	if err != nil && (!errors.As(err, &bre) || bre.Error() == "") {
		t.Fatalf("error %v (%T) is not a *BadRequestError", err, err)
	}
}

func FuzzDecodeDownloadRequest(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := agent.DecodeDownloadRequest(bytes.NewReader(data))
		badRequest(t, err)
		if err != nil {
			return
		}
		// What is accepted is a plain, visible name in the pool.
		if filepath.Base(req.Name) != req.Name || strings.HasPrefix(req.Name, ".") || strings.ContainsAny(req.Name, "/:\x00") {
			t.Fatalf("accepted name %q", req.Name)
		}
		if filepath.Join("/pool", req.Name) == "/pool" || filepath.Dir(filepath.Join("/pool", req.Name)) != "/pool" {
			t.Fatalf("name %q leaves the pool", req.Name)
		}
		if req.Size < 0 || (req.Format != "" && req.Format != "qcow2" && req.Format != "raw") {
			t.Fatalf("accepted %+v", req)
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("decoded request fails Validate: %v", err)
		}
	})
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"7f3c2a.qcow2", "a", ".", "..", "../x", "a/b", ".hidden", "nbd:x", "x\x00y", strings.Repeat("a", 256), "ü.qcow2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if agent.ValidateName(name) != nil {
			return
		}
		if name == "" || len(name) > 255 || name[0] == '.' || filepath.Base(name) != name || strings.ContainsAny(name, "/:\\ \x00\n") {
			t.Fatalf("accepted %q", name)
		}
	})
}

func FuzzDecodeImportRequest(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := agent.DecodeImportRequest(bytes.NewReader(data))
		badRequest(t, err)
		if err == nil && strings.TrimSpace(req.PEM) == "" {
			t.Fatal("accepted an empty PEM")
		}
	})
}

func FuzzDecodePlan(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := agent.DecodePlan(bytes.NewReader(data))
		badRequest(t, err)
		if err == nil && (p.Dir == "" || len(p.Disks) == 0) {
			t.Fatalf("accepted a plan without dir or disks: %+v", p)
		}
	})
}
