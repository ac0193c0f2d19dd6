package download_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/directdl/directdl/download"
)

// Parse a template checksum as an orchestrator stores it, hash content with
// it, and verify.
func ExampleParseChecksum() {
	sum := sha256.Sum256([]byte("template bytes"))
	c, err := download.ParseChecksum(fmt.Sprintf("{SHA-256}%X", sum))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Algorithm(), c.String()[:15])

	h := c.NewHash()
	h.Write([]byte("template bytes"))
	fmt.Println("verified:", c.Verify(h.Sum(nil)) == nil)

	// CloudStack reads bare hex as MD5, so a bare SHA-256 value is refused
	// with a hint.
	_, err = download.ParseChecksum(c.Hex())
	fmt.Println(err != nil)
	// Output:
	// sha256 sha256:af87c13f
	// verified: true
	// true
}
