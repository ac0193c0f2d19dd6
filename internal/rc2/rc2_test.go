package rc2

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"os"
	"os/exec"
	"testing"
)

// TestVectors checks the test vectors of RFC 2268, section 5.
func TestVectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key                   string
		bits                  int
		plaintext, ciphertext string
	}{
		{"0000000000000000", 63, "0000000000000000", "ebb773f993278eff"},
		{"ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"},
		{"3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"},
		{"88", 64, "0000000000000000", "61a8a244adacccf0"},
		{"88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"},
		{"88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"},
		{"88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"},
		{"88bca90e90875a7f0f79c384627bafb216f80a6f85920584c42fceb0be255daf1e", 129, "0000000000000000", "5b78d3a43dfff1f1"},
	} {
		key, _ := hex.DecodeString(tc.key)
		plain, _ := hex.DecodeString(tc.plaintext)
		want, _ := hex.DecodeString(tc.ciphertext)
		c, err := New(key, tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, BlockSize)
		c.Encrypt(got, plain)
		if !bytes.Equal(got, want) {
			t.Errorf("key %s, %d bits: Encrypt(%s) = %x, want %s", tc.key, tc.bits, tc.plaintext, got, tc.ciphertext)
		}
		c.Decrypt(got, want)
		if !bytes.Equal(got, plain) {
			t.Errorf("key %s, %d bits: Decrypt(%s) = %x, want %s", tc.key, tc.bits, tc.ciphertext, got, tc.plaintext)
		}
	}
}

func TestNewRefusesBadKeys(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  []byte
		bits int
	}{{nil, 40}, {make([]byte, 129), 40}, {make([]byte, 5), 0}, {make([]byte, 5), 1025}} {
		if _, err := New(tc.key, tc.bits); err == nil {
			t.Errorf("New(%d bytes, %d bits) accepted", len(tc.key), tc.bits)
		}
	}
}

// TestOpenSSL decrypts what OpenSSL's legacy provider encrypts with
// RC2-40-CBC and RC2-128-CBC, as PKCS #12 uses them.
func TestOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl not found, but CI must run this test: install the Debian package openssl")
		}
		t.Skip("openssl not found")
	}
	t.Parallel()
	plain := []byte("RC2 in CBC mode, as PKCS #12 stores of Java 8 and OpenSSL 1.x use it.")
	iv := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	for _, tc := range []struct {
		cipher string
		key    string
		bits   int
	}{
		{"rc2-40-cbc", "0123456789", 40},
		{"rc2-cbc", "00112233445566778899aabbccddeeff", 128},
	} {
		cmd := exec.Command(openssl, "enc", "-provider", "legacy", "-provider", "default", "-"+tc.cipher, "-K", tc.key, "-iv", hex.EncodeToString(iv))
		cmd.Stdin = bytes.NewReader(plain)
		enc, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl enc -%s: %v", tc.cipher, err)
		}
		key, _ := hex.DecodeString(tc.key)
		c, err := New(key, tc.bits)
		if err != nil {
			t.Fatal(err)
		}
		if len(enc)%BlockSize != 0 {
			t.Fatalf("openssl wrote %d bytes", len(enc))
		}
		got := make([]byte, len(enc))
		cipher.NewCBCDecrypter(c, iv).CryptBlocks(got, enc)
		pad := int(got[len(got)-1])
		if pad < 1 || pad > BlockSize || !bytes.Equal(got[:len(got)-pad], plain) {
			t.Errorf("%s: decrypted %q, want %q", tc.cipher, got, plain)
		}
	}
}
