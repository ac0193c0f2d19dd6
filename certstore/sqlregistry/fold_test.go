package sqlregistry

import (
	"strings"
	"testing"
)

func TestFoldKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"kvm", "KVM"},
		{"KVM", "KVM"},
		{"VMware", "VMWARE"},
		{"\u212avm", "KVM"}, // KELVIN SIGN
		{"ſ", "S"},          // LONG S
		{"straße", "STRAßE"},
		{"σς", "ΣΣ"},
		{"xen-4.2_a", "XEN-4.2_A"},
		{"\xff", "\ufffd"},
	} {
		if got := foldKey(tc.in); got != tc.want {
			t.Errorf("foldKey(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzFoldKey checks that foldKey's equality is strings.EqualFold's, which
// MemoryDB compares hypervisors with.
func FuzzFoldKey(f *testing.F) {
	for _, s := range [][2]string{
		{"kvm", "KVM"}, {"\u212a", "k"}, {"ſ", "s"}, {"ß", "ẞ"}, {"σ", "ς"}, {"Σ", "ς"},
		{"ǅ", "ǆ"}, {"\xff", "\xfe"}, {"\xff", "\ufffd"}, {"İ", "i"}, {"ı", "I"}, {"a", "ab"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ka, kb := foldKey(a), foldKey(b)
		if (ka == kb) != strings.EqualFold(a, b) {
			t.Errorf("foldKey(%q) = %q, foldKey(%q) = %q; strings.EqualFold = %v", a, ka, b, kb, strings.EqualFold(a, b))
		}
		if foldKey(ka) != ka {
			t.Errorf("foldKey(foldKey(%q)) = %q, want %q", a, foldKey(ka), ka)
		}
		if !strings.EqualFold(a, ka) {
			t.Errorf("foldKey(%q) = %q, which strings.EqualFold does not take for it", a, ka)
		}
	})
}
