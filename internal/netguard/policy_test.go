package netguard

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckAddrDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr   string
		reason string // "" means allowed
	}{
		// IPv4 special ranges.
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"169.254.169.254", "a cloud metadata service"},
		{"169.254.170.2", "a cloud metadata service"},
		{"100.100.100.200", "a cloud metadata service"},
		{"169.254.1.1", "link-local"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"240.0.0.1", "reserved"},
		// IPv6 special ranges.
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"febf:ffff::1", "link-local"},
		{"ff02::1", "multicast"},
		{"fd00:ec2::254", "a cloud metadata service"},
		// IPv4 forms inside IPv6.
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "a cloud metadata service"},
		{"::ffff:0.0.0.0", "unspecified"},
		{"::ffff:224.0.0.1", "multicast"},
		{"64:ff9b::7f00:1", "the NAT64 form of 127.0.0.1 (loopback)"},
		{"64:ff9b::a9fe:a9fe", "the NAT64 form of 169.254.169.254 (a cloud metadata service)"},
		{"2002:7f00:1::1", "the 6to4 form of 127.0.0.1 (loopback)"},
		{"::127.0.0.1", "the IPv4-compatible form of 127.0.0.1 (loopback)"},
		// Allowed by default.
		{"8.8.8.8", ""},
		{"192.0.2.10", ""},
		{"10.1.2.3", ""},
		{"172.16.0.1", ""},
		{"192.168.1.1", ""},
		{"100.64.0.1", ""},      // CGNAT
		{"100.127.255.254", ""}, // CGNAT
		{"fd00::1", ""},         // ULA
		{"fc00::1", ""},         // ULA
		{"2001:db8::1", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"2002:808:808::1", ""},  // 6to4 of 8.8.8.8
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"223.255.255.255", ""},
		{"fec0::1", ""}, // deprecated site-local, treated like ULA
	}
	var p Policy
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			err := p.CheckAddr(netip.MustParseAddr(tt.addr))
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckAddr(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("CheckAddr(%s) = %v, want *DeniedError", tt.addr, err)
			}
			if !errors.Is(err, ErrDenied) {
				t.Errorf("errors.Is(%v, ErrDenied) = false, want true", err)
			}
			if de.Reason != tt.reason {
				t.Errorf("CheckAddr(%s) reason = %q, want %q", tt.addr, de.Reason, tt.reason)
			}
			if !strings.Contains(err.Error(), "allow it with an allow CIDR such as") {
				t.Errorf("CheckAddr(%s) message %q does not say how to allow it", tt.addr, err)
			}
		})
	}
}

func TestCheckAddrOverrides(t *testing.T) {
	t.Parallel()
	pfx := func(s ...string) Prefixes {
		var ps Prefixes
		for _, x := range s {
			ps = append(ps, netip.MustParsePrefix(x))
		}
		return ps
	}
	tests := []struct {
		name   string
		p      Policy
		addr   string
		reason string
	}{
		{"allow loopback", Policy{Allow: pfx("127.0.0.0/8")}, "127.0.0.1", ""},
		{"allow loopback covers mapped form", Policy{Allow: pfx("127.0.0.0/8")}, "::ffff:127.0.0.1", ""},
		{"allow loopback keeps other specials", Policy{Allow: pfx("127.0.0.0/8")}, "169.254.169.254", "a cloud metadata service"},
		{"allow loopback keeps ::1 denied", Policy{Allow: pfx("127.0.0.0/8")}, "::1", "loopback"},
		{"allow ::1", Policy{Allow: pfx("::1/128")}, "::1", ""},
		{"allow one metadata address", Policy{Allow: pfx("169.254.169.254/32")}, "169.254.169.254", ""},
		{"allow link-local v6", Policy{Allow: pfx("fe80::/10")}, "fe80::1%eth0", ""},
		{"mapped allow prefix", Policy{Allow: pfx("::ffff:127.0.0.0/104")}, "127.0.0.9", ""},
		{"allow is not a restriction", Policy{Allow: pfx("127.0.0.0/8")}, "8.8.8.8", ""},
		{"deny beats allow", Policy{Allow: pfx("127.0.0.0/8"), Deny: pfx("127.0.0.2/32")}, "127.0.0.2", "in deny CIDR"},
		{"deny beside allow", Policy{Allow: pfx("127.0.0.0/8"), Deny: pfx("127.0.0.2/32")}, "127.0.0.1", ""},
		{"deny private", Policy{Deny: pfx("10.0.0.0/8")}, "10.1.2.3", "in deny CIDR"},
		{"deny private mapped", Policy{Deny: pfx("10.0.0.0/8")}, "::ffff:10.1.2.3", "in deny CIDR"},
		{"deny private via NAT64", Policy{Deny: pfx("10.0.0.0/8")}, "64:ff9b::a01:203", "in deny CIDR"},
		{"deny CGNAT", Policy{Deny: pfx("100.64.0.0/10")}, "100.64.0.1", "in deny CIDR"},
		{"deny ULA", Policy{Deny: pfx("fc00::/7")}, "fd00::1", "in deny CIDR"},
		{"deny everything", Policy{Deny: pfx("0.0.0.0/0", "::/0")}, "8.8.8.8", "in deny CIDR"},
		{"only allowed: inside", Policy{Allow: pfx("192.0.2.0/24"), OnlyAllowed: true}, "192.0.2.7", ""},
		{"only allowed: outside", Policy{Allow: pfx("192.0.2.0/24"), OnlyAllowed: true}, "198.51.100.7", "not in any allow CIDR"},
		{"only allowed: special outside", Policy{Allow: pfx("192.0.2.0/24"), OnlyAllowed: true}, "127.0.0.1", "not in any allow CIDR"},
		{"only allowed: deny still wins", Policy{Allow: pfx("192.0.2.0/24"), Deny: pfx("192.0.2.7/32"), OnlyAllowed: true}, "192.0.2.7", "in deny CIDR"},
		{"allow NAT64 prefix explicitly", Policy{Allow: pfx("64:ff9b::/96")}, "64:ff9b::7f00:1", ""},
		{"allow v4 does not unlock NAT64 form", Policy{Allow: pfx("127.0.0.0/8")}, "64:ff9b::7f00:1", "the NAT64 form of 127.0.0.1 (loopback)"},
		{"allow everything unlocks specials", Policy{Allow: pfx("0.0.0.0/0")}, "169.254.169.254", ""},
		{"invalid address", Policy{}, "", "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			err := tt.p.CheckAddr(a)
			var de *DeniedError
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("CheckAddr(%s) = %v, want nil", tt.addr, err)
			case tt.reason == "":
			case !errors.As(err, &de):
				t.Fatalf("CheckAddr(%s) = %v, want *DeniedError", tt.addr, err)
			case de.Reason != tt.reason:
				t.Errorf("CheckAddr(%s) reason = %q, want %q (%v)", tt.addr, de.Reason, tt.reason, err)
			}
		})
	}
}

func TestDeniedErrorMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p    Policy
		addr string
		host string
		want string
	}{
		{Policy{}, "127.0.0.1", "mirror.example",
			"netguard: 127.0.0.1 (for mirror.example) is loopback; allow it with an allow CIDR such as 127.0.0.0/8"},
		{Policy{}, "::ffff:169.254.169.254", "",
			"netguard: 169.254.169.254 is a cloud metadata service; allow it with an allow CIDR such as 169.254.169.254/32"},
		{Policy{}, "64:ff9b::7f00:1", "x.example",
			"netguard: 64:ff9b::7f00:1 (for x.example) is the NAT64 form of 127.0.0.1 (loopback); allow it with an allow CIDR such as 64:ff9b::7f00:1/128"},
		{Policy{Deny: Prefixes{netip.MustParsePrefix("10.0.0.0/8")}}, "10.0.0.5", "db.internal",
			"netguard: 10.0.0.5 (for db.internal) is in deny CIDR 10.0.0.0/8; deny CIDRs win over allow CIDRs; narrow or split the deny CIDR to reach it"},
		{Policy{Allow: Prefixes{netip.MustParsePrefix("192.0.2.0/24")}, OnlyAllowed: true}, "198.51.100.1", "cdn.example",
			"netguard: 198.51.100.1 (for cdn.example) is not in any allow CIDR; add an allow CIDR such as 198.51.100.1/32"},
		{Policy{}, "127.0.0.1", "127.0.0.1",
			"netguard: 127.0.0.1 is loopback; allow it with an allow CIDR such as 127.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			e := tt.p.check(netip.MustParseAddr(tt.addr))
			if e == nil {
				t.Fatalf("check(%s) = nil, want an error", tt.addr)
			}
			e.Host = tt.host
			if got := e.Error(); got != tt.want {
				t.Errorf("Error() = %q\nwant        %q", got, tt.want)
			}
		})
	}
}

func TestDeniedErrorInvalid(t *testing.T) {
	t.Parallel()
	e := &DeniedError{Host: "h", Reason: "invalid"}
	if got, want := e.Error(), "netguard: invalid address (for h)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := (Policy{}).CheckAddr(netip.Addr{}).Error(), "netguard: invalid address"; got != want {
		t.Errorf("CheckAddr(zero) = %q, want %q", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Policy
		want string // substring of the error; "" means valid
	}{
		{"zero", Policy{}, ""},
		{"allow and deny", Policy{Allow: Prefixes{netip.MustParsePrefix("127.0.0.0/8")}, Deny: Prefixes{netip.MustParsePrefix("10.0.0.0/8")}}, ""},
		{"host bits", Policy{Allow: Prefixes{netip.MustParsePrefix("10.1.2.3/8")}}, "allow CIDR 10.1.2.3/8 has host bits set; did you mean 10.0.0.0/8 or 10.1.2.3/32?"},
		{"zero prefix", Policy{Deny: Prefixes{{}}}, "deny CIDR"},
		{"only allowed without allow", Policy{OnlyAllowed: true}, "no allow CIDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrPolicy) {
				t.Fatalf("Validate() = %v, want an ErrPolicy error containing %q", err, tt.want)
			}
		})
	}
}

func TestParsePrefixes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // String() of the result, or "error: substring"
	}{
		{"", ""},
		{"  ", ""},
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.0.0.0/8, 192.168.1.5 fd00::/8", "10.0.0.0/8,192.168.1.5/32,fd00::/8"},
		{"127.0.0.1,::1", "127.0.0.1/32,::1/128"},
		{"10.1.2.3/8", "error: did you mean 10.0.0.0/8 or 10.1.2.3/32?"},
		{"10.0.0.0/33", "error: not a CIDR prefix"},
		{"example.com", "error: not an IP address"},
		{"fe80::1%eth0", "error: has a zone"},
		{"10.0.0.0/8,,", "10.0.0.0/8"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			ps, err := ParsePrefixes(tt.in)
			if want, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrPolicy) {
					t.Fatalf("ParsePrefixes(%q) = %v, %v; want an ErrPolicy error containing %q", tt.in, ps, err, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrefixes(%q) error %v", tt.in, err)
			}
			if got := ps.String(); got != tt.want {
				t.Errorf("ParsePrefixes(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestPrefixesFlag(t *testing.T) {
	t.Parallel()
	var ps Prefixes
	for _, s := range []string{"127.0.0.0/8", "10.0.0.0/8,::1"} {
		if err := ps.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	if got, want := ps.String(), "127.0.0.0/8,10.0.0.0/8,::1/128"; got != want {
		t.Errorf("after Set: %q, want %q", got, want)
	}
	if err := ps.Set("nonsense"); err == nil {
		t.Error("Set(nonsense) = nil, want an error")
	}
}
