package checksum_test

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/directdl/directdl/internal/checksum"
)

func ExampleParse() {
	s, err := checksum.Parse("{SHA-256}BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", false)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s)
	fmt.Println(s.CloudStack())
	d := sha256.Sum256([]byte("abc"))
	fmt.Println(s.Match(d[:]))

	_, err = checksum.Parse("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", false)
	fmt.Println(errors.Is(err, checksum.ErrLength))
	fmt.Println(err)
	// Output:
	// sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	// {SHA-256}ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad
	// true
	// true
	// checksum "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad": MD5 needs 32 hex digits, got 64; bare hex means MD5 (CloudStack's rule): for SHA-256 write {SHA-256}ba7816bf…
}
