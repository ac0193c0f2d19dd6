package getter

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strings"

	gogetter "github.com/hashicorp/go-getter"

	"github.com/directdl/directdl/download"
	"github.com/directdl/directdl/internal/netguard"
)

// Scheme names for WithSchemes: the go-getter getters this package can run.
const (
	// SchemeS3 reads Amazon S3 and S3-compatible stores:
	// s3::https://s3.amazonaws.com/bucket/key,
	// bucket.s3.amazonaws.com/key, or
	// s3::http://host:port/bucket/key?region=r for another endpoint.
	SchemeS3 = "s3"
	// SchemeGCS reads Google Cloud Storage:
	// gcs::https://www.googleapis.com/storage/v1/bucket/object or
	// www.googleapis.com/storage/v1/bucket/object.
	SchemeGCS = "gcs"
	// SchemeGit clones a git repository with the git program and takes one
	// file from it: git::https://host/repo.git//path/in/repo?ref=v1.
	SchemeGit = "git"
	// SchemeHg is SchemeGit for Mercurial (the hg program), with ?rev=.
	SchemeHg = "hg"
	// SchemeFile copies a local file: file:///abs/path, file::/abs/path or
	// /abs/path. It also lets git and hg read repositories on local paths.
	SchemeFile = "file"
)

// known lists every scheme WithSchemes accepts, in the order messages name
// them.
var known = []string{SchemeS3, SchemeGCS, SchemeGit, SchemeHg, SchemeFile}

// innerSchemes is which URL schemes each getter takes after its "name::".
var innerSchemes = map[string][]string{
	SchemeS3:   {"https", "http"},
	SchemeGCS:  {"https"},
	SchemeGit:  {"https", "http", "ssh", "git", "file"},
	SchemeHg:   {"https", "http", "ssh", "file"},
	SchemeFile: {"file"},
}

// source is a Request.URL taken apart.
type source struct {
	// engine: an http(s) URL, for download.Client.Get; url is what to pass.
	engine bool
	url    string
	// scheme is the getter to run; inner the URL it is given, without
	// the checksum, subdirectory and forced prefix.
	scheme string
	inner  *url.URL
	// file is the path of the wanted file inside a git or hg repository.
	file string
	// sum is the checksum the URL carried (?checksum=), if any.
	sum download.Checksum
	// name stands for the source in results and messages.
	name string
}

// splitForced splits go-getter's forced-getter prefix ("git::URL") off s.
// The prefix is letters and digits, as go-getter's own pattern has it, and
// is returned in lower case; "" when there is none.
func splitForced(s string) (forced, rest string) {
	i := strings.Index(s, "::")
	if i <= 0 || i+2 == len(s) {
		return "", s
	}
	for _, c := range s[:i] {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return "", s
		}
	}
	return strings.ToLower(s[:i]), s[i+2:]
}

// splitSubdir splits go-getter's "//subdir" off s, which may have a query:
// "https://h/repo.git//dir/f?ref=x" gives "https://h/repo.git?ref=x" and
// "dir/f". The "//" after the scheme does not count.
func splitSubdir(s string) (rest, subdir string) {
	stop := len(s)
	if i := strings.IndexByte(s, '?'); i >= 0 {
		stop = i
	}
	off := 0
	if i := strings.Index(s[:stop], "://"); i >= 0 {
		off = i + 3
	}
	i := strings.Index(s[off:stop], "//")
	if i < 0 {
		return s, ""
	}
	i += off
	return s[:i] + s[stop:], s[i+2 : stop]
}

func badSource(raw string, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s: "+format,
		append([]any{download.ErrRequest, ErrSource, netguard.RedactString(raw)}, args...)...)
}

func schemeError(raw, scheme, format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s: "+format,
		append([]any{download.ErrRequest, ErrScheme, netguard.RedactString(raw)}, args...)...)
}

// detectorsFor returns go-getter's detectors for the shorthand forms of the
// enabled schemes: bucket.s3.amazonaws.com/key, www.googleapis.com/...,
// git@host:repo (scp-like ssh) and absolute paths. The GitHub, GitLab and
// Bitbucket detectors are never used: they turn bare host names into git
// clones, and Bitbucket's asks bitbucket.org's API while detecting.
func detectorsFor(enabled map[string]bool) []gogetter.Detector {
	ds := []gogetter.Detector{}
	if enabled[SchemeGit] {
		ds = append(ds, new(gogetter.GitDetector))
	}
	if enabled[SchemeS3] {
		ds = append(ds, new(gogetter.S3Detector))
	}
	if enabled[SchemeGCS] {
		ds = append(ds, new(gogetter.GCSDetector))
	}
	if enabled[SchemeFile] {
		ds = append(ds, new(gogetter.FileDetector))
	}
	return ds
}

// parseSource decides where raw goes and with what. It does no I/O: the
// detectors it runs only rewrite strings.
func parseSource(raw string, enabled map[string]bool) (source, error) {
	if raw == "" {
		return source{}, badSource(raw, "no URL")
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return source{}, badSource(raw, "the URL contains control characters")
	}
	forced, rest := splitForced(raw)
	if forced == "http" || forced == "https" || forced == "" {
		if u, err := url.Parse(rest); err == nil && (strings.EqualFold(u.Scheme, "http") || strings.EqualFold(u.Scheme, "https")) {
			if forced != "" && !strings.EqualFold(u.Scheme, forced) {
				return source{}, badSource(raw, "%s:: names an %s URL", forced, strings.ToLower(u.Scheme))
			}
			if err := refuseArchive(raw, u); err != nil {
				return source{}, err
			}
			// The engine reads ?checksum= itself, and never hands
			// http(s) to go-getter's HttpGetter.
			return source{engine: true, url: rest, name: rest}, nil
		}
		if forced != "" {
			return source{}, badSource(raw, "%s:: needs an %s:// URL", forced, forced)
		}
	}

	if forced != "" {
		if !slices.Contains(known, forced) {
			return source{}, schemeError(raw, forced, "scheme %q is not supported here (supported: %s; http and https go to the download engine)", forced, strings.Join(known, ", "))
		}
		if !enabled[forced] {
			return source{}, schemeError(raw, forced, "scheme %q is not enabled: add it with WithSchemes(%q, ...)", forced, forced)
		}
	} else if strings.HasPrefix(raw, "/") && !enabled[SchemeFile] {
		return source{}, schemeError(raw, SchemeFile, "a local path reads local files, and scheme %q is not enabled: add it with WithSchemes(%q, ...)", SchemeFile, SchemeFile)
	}
	// Shorthand forms become forced URLs; a URL with a scheme is left
	// alone (and so are forced ones whose rest has a scheme).
	detected, err := gogetter.Detect(raw, "", detectorsFor(enabled))
	if err != nil {
		if forced == "" && !strings.Contains(raw, "://") && !strings.HasPrefix(raw, "/") {
			return source{}, badSource(raw, "not a URL this adapter knows (%v); write scheme::URL with a scheme enabled by WithSchemes, or an absolute path for file", err)
		}
		return source{}, badSource(raw, "%v", err)
	}
	forced, rest = splitForced(detected)
	rest, subdir := splitSubdir(rest)
	u, err := url.Parse(rest)
	if err != nil {
		return source{}, badSource(raw, "%v", netguard.RedactError(err))
	}
	inner := strings.ToLower(u.Scheme)
	scheme := forced
	if scheme == "" {
		scheme = inner
		if scheme == "" {
			return source{}, badSource(raw, "no scheme; write scheme::URL (s3::https://..., git::https://...) or an absolute path")
		}
	}
	if !slices.Contains(known, scheme) {
		return source{}, schemeError(raw, scheme, "scheme %q is not supported here (supported: %s; http and https go to the download engine)", scheme, strings.Join(known, ", "))
	}
	if !enabled[scheme] {
		return source{}, schemeError(raw, scheme, "scheme %q is not enabled: add it with WithSchemes(%q, ...)", scheme, scheme)
	}
	if !slices.Contains(innerSchemes[scheme], inner) {
		return source{}, badSource(raw, "%s:: takes %s URLs, not %q", scheme, strings.Join(innerSchemes[scheme], ", "), inner)
	}
	if inner == "file" && !enabled[SchemeFile] {
		return source{}, schemeError(raw, SchemeFile, "%s:: from a local path reads local files: add %q with WithSchemes to allow it", scheme, SchemeFile)
	}
	if inner == "file" && u.Host != "" && u.Host != "localhost" {
		return source{}, badSource(raw, "a file URL names a local file and has no host: file:///dir/file")
	}
	if inner != "file" && u.Host == "" {
		return source{}, badSource(raw, "no host")
	}
	if scheme == SchemeGCS && (!strings.HasSuffix(u.Hostname(), ".googleapis.com") || strings.Count(u.Hostname(), ".") != 2) {
		return source{}, badSource(raw, "gcs:: takes Google's API URLs: gcs::https://www.googleapis.com/storage/v1/BUCKET/OBJECT")
	}
	if err := refuseArchive(raw, u); err != nil {
		return source{}, err
	}
	sum, u, err := download.ChecksumFromURL(u)
	if err != nil {
		return source{}, badSource(raw, "%v", err)
	}
	if u.Query().Has("checksum") {
		return source{}, badSource(raw, "an empty checksum parameter; give checksum=sha256:HEX or none")
	}
	if u.Query().Has("filename") {
		return source{}, badSource(raw, "the filename parameter is not used: Request.Path names the file")
	}
	s := source{scheme: scheme, inner: u, sum: sum, name: displayName(scheme, u, subdir)}
	switch scheme {
	case SchemeGit, SchemeHg:
		// go-getter's own rule without a //: the last path element is a
		// file at the top of the repository.
		if subdir == "" {
			dir, file := path.Split(u.Path)
			if file == "" || dir == "" || dir == "/" {
				return source{}, badSource(raw, "name the file: %s::URL//path/in/repository", scheme)
			}
			subdir = file
			u.Path = strings.TrimSuffix(dir, "/")
			u.RawPath = ""
		}
		file, err := repoPath(subdir)
		if err != nil {
			return source{}, badSource(raw, "%v", err)
		}
		s.file = file
	default:
		if subdir != "" {
			return source{}, badSource(raw, "a //subdirectory selects part of a directory download; this adapter gets one file: put its whole path in the URL")
		}
	}
	if scheme == SchemeFile && (u.Path == "" || !strings.HasPrefix(u.Path, "/")) {
		return source{}, badSource(raw, "a file URL needs an absolute path (file:///dir/file)")
	}
	return s, nil
}

// repoPath checks a path inside a repository: relative, clean, not "."
// and never up out of it, and not into the repository's own metadata.
func repoPath(p string) (string, error) {
	if strings.ContainsAny(p, "*?[\\") {
		return "", errors.New("the path in the repository may not hold glob characters or backslashes")
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", errors.New(`the path in the repository may not contain a ".." element`)
		}
	}
	c := path.Clean("/" + p)[1:]
	if c == "" {
		return "", errors.New("name a file in the repository after //")
	}
	for _, el := range strings.Split(c, "/") {
		if strings.EqualFold(el, ".git") || strings.EqualFold(el, ".hg") {
			return "", fmt.Errorf("the path in the repository may not reach into %s", el)
		}
	}
	return c, nil
}

func refuseArchive(raw string, u *url.URL) error {
	if u.Query().Has("archive") {
		return badSource(raw, "archive= asks go-getter to unpack the download, which this adapter never does: drop the parameter to store the file as it is")
	}
	return nil
}

// displayName is the source as results and messages show it: the URL
// without the checksum, and with git's ssh key hidden.
func displayName(scheme string, u *url.URL, subdir string) string {
	c := *u
	q := c.Query()
	if q.Has("sshkey") {
		q.Set("sshkey", netguard.Redacted)
		c.RawQuery = q.Encode()
	}
	s := c.String()
	if subdir != "" {
		base, query, _ := strings.Cut(s, "?")
		s = base + "//" + subdir
		if query != "" {
			s += "?" + query
		}
	}
	if scheme != strings.ToLower(u.Scheme) {
		s = scheme + "::" + s
	}
	return s
}
