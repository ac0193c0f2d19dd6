package qemu

import (
	"strings"
	"testing"
)

func TestParseNBDAddress(t *testing.T) {
	tests := []struct {
		in      string
		want    socketAddress
		wantErr string
	}{
		{in: "127.0.0.1:10809", want: socketAddress{Type: "inet", Host: "127.0.0.1", Port: "10809"}},
		{in: "[::1]:10809", want: socketAddress{Type: "inet", Host: "::1", Port: "10809"}},
		{in: "dest.example:1", want: socketAddress{Type: "inet", Host: "dest.example", Port: "1"}},
		{in: "unix:/run/nbd.sock", want: socketAddress{Type: "unix", Path: "/run/nbd.sock"}},
		{in: "unix:", wantErr: "empty unix socket path"},
		{in: "127.0.0.1", wantErr: "missing port"},
		{in: ":10809", wantErr: "empty host"},
		{in: "127.0.0.1:0", wantErr: "port 0"},
		{in: "127.0.0.1:65536", wantErr: "not a number"},
		{in: "127.0.0.1:+80", wantErr: "not a number"},
		{in: "127.0.0.1:080", wantErr: "not a number"},
		{in: "a,b:80", wantErr: "neither a name nor an IP"},
		{in: "", wantErr: "missing port"},
	}
	for _, tc := range tests {
		got, err := parseNBDAddress(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "NBD address") {
				t.Errorf("parseNBDAddress(%q) error = %v, want one saying %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseNBDAddress(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMigrateURI(t *testing.T) {
	tests := []struct {
		in      string
		want    socketAddress
		wantErr string
	}{
		{in: "tcp:127.0.0.1:0", want: socketAddress{Type: "inet", Host: "127.0.0.1", Port: "0"}},
		{in: "tcp:[::1]:49152", want: socketAddress{Type: "inet", Host: "::1", Port: "49152"}},
		{in: "unix:/run/mig.sock", want: socketAddress{Type: "unix", Path: "/run/mig.sock"}},
		{in: "exec:cat > out", wantErr: "use tcp:HOST:PORT or unix:PATH"},
		{in: "rdma:1.2.3.4:5", wantErr: "use tcp:HOST:PORT or unix:PATH"},
		{in: "tcp:127.0.0.1", wantErr: "missing port"},
		{in: "tcp::5", wantErr: "empty host"},
		{in: "unix:", wantErr: "empty unix socket path"},
	}
	for _, tc := range tests {
		got, err := parseMigrateURI(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "migration URI") {
				t.Errorf("parseMigrateURI(%q) error = %v, want one saying %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseMigrateURI(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		// What QEMU is given parses back to the same address.
		if again, err := parseMigrateURI(migrateURI(got)); err != nil || again != got {
			t.Errorf("round trip of %q: %+v, %v", tc.in, again, err)
		}
	}
}

func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:10809", "[::1]:10809", "unix:/run/nbd.sock", "tcp:127.0.0.1:0",
		"tcp:[::1]:49152", "exec:cat", "127.0.0.1:65536", "host:", "[::1", "tcp:a:b:c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := parseNBDAddress(s); err == nil {
			switch a.Type {
			case "inet":
				if a.Host == "" || a.Port == "" || a.Port == "0" {
					t.Fatalf("parseNBDAddress(%q) = %+v", s, a)
				}
			case "unix":
				if a.Path == "" {
					t.Fatalf("parseNBDAddress(%q) = %+v", s, a)
				}
			default:
				t.Fatalf("parseNBDAddress(%q) type %q", s, a.Type)
			}
		}
		a, err := parseMigrateURI(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(s, "tcp:") && !strings.HasPrefix(s, "unix:") {
			t.Fatalf("parseMigrateURI(%q) accepted another transport", s)
		}
		again, err := parseMigrateURI(migrateURI(a))
		if err != nil || again != a {
			t.Fatalf("round trip of %q: %+v -> %q -> %+v, %v", s, a, migrateURI(a), again, err)
		}
	})
}
