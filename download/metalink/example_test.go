package metalink_test

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/directdl/directdl/download/metalink"
)

func ExampleParse() {
	doc := `<?xml version="1.0" encoding="UTF-8"?>
<metalink xmlns="urn:ietf:params:xml:ns:metalink">
  <file name="disk.qcow2">
    <size>1048576</size>
    <hash type="SHA-256">E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855</hash>
    <url priority="2" location="DE">https://mirror-b.example/disk.qcow2</url>
    <url priority="1">https://mirror-a.example/disk.qcow2</url>
  </file>
</metalink>`
	m, err := metalink.Parse(strings.NewReader(doc), metalink.RequireSize())
	if err != nil {
		fmt.Println(err)
		return
	}
	f := m.Files[0]
	h, _ := f.StrongestHash()
	fmt.Println(f.Name, f.Size, h.Type, h.Value[:12])
	for _, u := range f.SortedURLs() {
		fmt.Println(u.Priority, u.Location, u.URL)
	}
	dest, _ := f.SafeJoin("/var/lib/images")
	fmt.Println(dest)

	_, err = metalink.Parse(strings.NewReader(strings.Replace(doc, "disk.qcow2\"", "../../etc/cron.d/x\"", 1)))
	fmt.Println(err)
	// Output:
	// disk.qcow2 1048576 sha-256 e3b0c44298fc
	// 1  https://mirror-a.example/disk.qcow2
	// 2 de https://mirror-b.example/disk.qcow2
	// /var/lib/images/disk.qcow2
	// metalink: file "../../etc/cron.d/x": name: name has a ".." segment, which would climb out of the destination
}

func ExampleMetalink_Marshal() {
	m := &metalink.Metalink{
		Files: []metalink.File{{
			Name:   "disk.qcow2",
			Size:   5,
			Hashes: []metalink.Hash{{Type: "sha-256", Value: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}},
			// md5 of "hell" and "o": the pieces of "hello".
			Pieces: &metalink.Pieces{Length: 4, Type: "md5", Hashes: []string{
				"4229d691b07b13341da53f17ab9f2416", "d95679752134a2d9eb61dbd7b91c4bcc",
			}},
			URLs: []metalink.URL{{URL: "http://127.0.0.1:8080/disk.qcow2", Priority: 1}},
		}},
	}
	if _, err := m.WriteTo(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <metalink xmlns="urn:ietf:params:xml:ns:metalink">
	//   <file name="disk.qcow2">
	//     <size>5</size>
	//     <hash type="sha-256">2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824</hash>
	//     <pieces length="4" type="md5">
	//       <hash>4229d691b07b13341da53f17ab9f2416</hash>
	//       <hash>d95679752134a2d9eb61dbd7b91c4bcc</hash>
	//     </pieces>
	//     <url priority="1">http://127.0.0.1:8080/disk.qcow2</url>
	//   </file>
	// </metalink>
}

func ExampleParseLinkHeaders() {
	h := http.Header{}
	h.Add("Link", `<http://mirror.example/pub/disk.qcow2>; rel=duplicate; pri=1; geo=nl; pref`)
	h.Add("Link", `</mirror2/disk.qcow2>; rel=duplicate; pri=2, <http://x.example/>; rel=describedby`)
	h.Add("Link", `<http://bad.example/disk.qcow2>; rel=duplicate; pri=0`)
	base, _ := url.Parse("https://alice:secret@origin.example/pub/disk.qcow2")
	mirrors, err := metalink.ParseLinkHeaders(h, base)
	for _, u := range mirrors {
		fmt.Println(u.Priority, u.Location, u.Preferred, u.URL)
	}
	fmt.Println(err)

	h = http.Header{}
	h.Set("Digest", "SHA-256=LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=")
	hashes, _ := metalink.ParseDigest(h)
	fmt.Println(hashes[0].Type, hashes[0].Value)
	// Output:
	// 1 nl true http://mirror.example/pub/disk.qcow2
	// 2  false https://origin.example/mirror2/disk.qcow2
	// metalink: Link <http://bad.example/disk.qcow2>: pri="0" is not an integer in 1..999999
	// sha-256 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824
}

func ExampleMetalink_Pick() {
	doc := &metalink.Metalink{Files: []metalink.File{{Name: "a.qcow2"}, {Name: "b.qcow2"}}}
	if _, err := doc.Pick(""); err != nil {
		fmt.Println(err)
	}
	f, _ := doc.Pick("b.qcow2")
	fmt.Println(f.Name)
	// Output:
	// metalink: no such file: the document describes 2 files ("a.qcow2", "b.qcow2"); name one
	// b.qcow2
}
