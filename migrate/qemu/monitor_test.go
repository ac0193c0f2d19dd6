package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/digitalocean/go-qemu/qmp"
	"github.com/digitalocean/go-qemu/qmp/qmptest"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name      string
		raw       string
		wantRet   string // compact JSON
		wantClass string // for a *QMPError
		wantDesc  string
		wantErr   string // for other errors
	}{
		{name: "empty object", raw: `{"return": {}}`, wantRet: `{}`},
		{name: "list", raw: `{"return": [1, 2]}` + "\r\n", wantRet: `[1,2]`},
		{name: "string", raw: `{"return": ""}`, wantRet: `""`},
		{name: "with id", raw: `{"id": "x", "return": {"a": 1}}`, wantRet: `{"a":1}`},
		{name: "error", raw: `{"error": {"class": "GenericError", "desc": "NBD server already running"}}`, wantClass: "GenericError", wantDesc: "NBD server already running"},
		{name: "error without desc", raw: `{"error": {"class": "DeviceNotFound"}}`, wantClass: "DeviceNotFound", wantDesc: "QEMU gave no description"},
		{name: "empty", raw: "  \n", wantErr: "empty reply"},
		{name: "not JSON", raw: `{"return": `, wantErr: "not a QMP reply"},
		{name: "not an object", raw: `[1]`, wantErr: "not a QMP reply"},
		{name: "neither", raw: `{"event": "STOP"}`, wantErr: `neither "return" nor "error"`},
		{name: "null return", raw: `{"return": null}`, wantErr: `neither "return" nor "error"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ret, err := parseReply("cmd", []byte(tc.raw))
			var qe *QMPError
			switch {
			case tc.wantRet != "":
				if err != nil {
					t.Fatalf("error %v", err)
				}
				var v any
				if err := json.Unmarshal(ret, &v); err != nil {
					t.Fatalf("return value %s: %v", ret, err)
				}
				got, _ := json.Marshal(v)
				if string(got) != tc.wantRet {
					t.Errorf("return = %s, want %s", got, tc.wantRet)
				}
			case tc.wantDesc != "":
				if !errors.As(err, &qe) {
					t.Fatalf("error %v is not a *QMPError", err)
				}
				if qe.Command != "cmd" || qe.Class != tc.wantClass || qe.Desc != tc.wantDesc {
					t.Errorf("QMPError = %+v", qe)
				}
				if !errors.Is(err, ErrQMP) {
					t.Error("QMPError does not wrap ErrQMP")
				}
			default:
				if err == nil || errors.As(err, &qe) || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "cmd: ") {
					t.Errorf("error = %v, want one naming the command and saying %q", err, tc.wantErr)
				}
			}
		})
	}
}

func FuzzParseReply(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "replies", "*.json"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata/replies: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ret, err := parseReply("cmd", raw)
		if err != nil {
			if ret != nil {
				t.Fatalf("return value %q with error %v", ret, err)
			}
			var qe *QMPError
			if errors.As(err, &qe) && (qe.Command != "cmd" || qe.Desc == "") {
				t.Fatalf("QMPError %+v lacks the command or a description", qe)
			}
			return
		}
		if !json.Valid(ret) {
			t.Fatalf("return value %q is not JSON", ret)
		}
	})
}

// Over a monitor that passes QEMU's replies on, the error class arrives.
func TestMonitorErrorClass(t *testing.T) {
	fake := qmptest.NewMonitor(func(cmd qmp.Command) (any, error) {
		switch cmd.Execute {
		case "query-status":
			return map[string]any{"return": map[string]any{"status": "running", "running": true}}, nil
		case "broken":
			return nil, errors.New("device 'x' not found")
		}
		return map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": "The command " + cmd.Execute + " has not been found"}}, nil
	})
	m, err := NewMonitor(fake, "fake")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()

	var st statusInfo
	if err := m.Execute(ctx, "query-status", nil, &st); err != nil || !st.Running || st.Status != "running" {
		t.Errorf("query-status = %+v, %v", st, err)
	}
	err = m.Execute(ctx, "nosuch", map[string]any{"a": 1}, nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Command != "nosuch" || qe.Class != "CommandNotFound" {
		t.Errorf("error = %#v, want a CommandNotFound QMPError for nosuch", err)
	}
	// go-qemu's socket monitor hands an error reply over as a plain error.
	err = m.Execute(ctx, "broken", nil, nil)
	if !errors.As(err, &qe) || qe.Command != "broken" || qe.Desc != "device 'x' not found" || qe.Class != "" {
		t.Errorf("error = %#v, want a QMPError for broken", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := m.Execute(cctx, "query-status", nil, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Execute: %v", err)
	}
	if err := m.Execute(ctx, "query-status", make(chan int), nil); err == nil || !strings.Contains(err.Error(), "marshal") {
		t.Errorf("unmarshallable arguments: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Against real QEMU, a refused command is a *QMPError naming it, and the
// connection stays usable afterwards.
func TestMonitorQEMU(t *testing.T) {
	t.Parallel()
	p := startVM(t, "vm", false)
	ctx := context.Background()
	err := p.QMP().Execute(ctx, "blockdev-del", map[string]any{"node-name": "no-such-node"}, nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Command != "blockdev-del" || !strings.Contains(qe.Desc, "no-such-node") {
		t.Fatalf("error = %v, want a QMPError for blockdev-del naming the node", err)
	}
	if qe.Class != "GenericError" {
		t.Errorf("class = %q, want GenericError", qe.Class)
	}
	if err := p.QMP().Execute(ctx, "no-such-command", nil, nil); !errors.As(err, &qe) || qe.Command != "no-such-command" || qe.Class != "CommandNotFound" {
		t.Errorf("error = %#v, want a CommandNotFound QMPError", err)
	}
	if !strings.Contains(err.Error(), "blockdev-del") {
		t.Errorf("message %q does not name the command", err)
	}
	if got := status(t, p.QMP()); got != "running" {
		t.Errorf("status = %q, want running", got)
	}
	stop(t, p)
	if err := p.QMP().Execute(ctx, "query-status", nil, nil); !errors.Is(err, ErrMonitor) {
		t.Errorf("after stop: error = %v, want ErrMonitor", err)
	}
	if err := p.Wait(ctx); err != nil {
		t.Errorf("Wait after quit: %v", err)
	}
}

func TestDialMissingSocket(t *testing.T) {
	_, err := Dial(context.Background(), filepath.Join(t.TempDir(), "none.qmp"), "vm")
	if !errors.Is(err, ErrMonitor) || !strings.Contains(err.Error(), "none.qmp") {
		t.Errorf("error = %v, want ErrMonitor naming the socket", err)
	}
}

// A QMP server that sends events at every turn, including during the
// handshake: each reply must reach the command it answers, intact.
func TestSocketMonitorEvents(t *testing.T) {
	sock := filepath.Join(shortDir(t), "fake.qmp")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 200
	served := make(chan error, 1)
	go func() {
		served <- func() error {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			event := `{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "JOB_STATUS_CHANGE", "data": {"status": "running", "id": "` + strings.Repeat("j", 300) + `"}}` + "\n"
			sc := bufio.NewScanner(c)
			if _, err := io.WriteString(c, `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}`+"\n"); err != nil {
				return err
			}
			for i := 0; sc.Scan(); i++ {
				var cmd struct {
					Execute   string         `json:"execute"`
					Arguments map[string]int `json:"arguments"`
				}
				if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
					return err
				}
				var reply string
				switch cmd.Execute {
				case "qmp_capabilities":
					reply = `{"return": {}}`
				case "echo":
					reply = fmt.Sprintf(`{"return": {"n": %d}}`, cmd.Arguments["n"])
				default:
					reply = `{"error": {"class": "CommandNotFound", "desc": "The command ` + cmd.Execute + ` has not been found"}}`
				}
				if _, err := io.WriteString(c, event+reply+"\n"+event+event); err != nil {
					return err
				}
			}
			return sc.Err()
		}()
	}()
	m, err := Dial(context.Background(), sock, "fake")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		var got struct{ N int }
		if err := m.Execute(context.Background(), "echo", map[string]int{"n": i}, &got); err != nil {
			t.Fatalf("echo %d: %v", i, err)
		}
		if got.N != i {
			t.Fatalf("echo %d answered %d", i, got.N)
		}
	}
	err = m.Execute(context.Background(), "nope", nil, nil)
	var qe *QMPError
	if !errors.As(err, &qe) || qe.Class != "CommandNotFound" || qe.Command != "nope" {
		t.Errorf("error = %#v, want a CommandNotFound QMPError", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("server: %v", err)
	}
}
