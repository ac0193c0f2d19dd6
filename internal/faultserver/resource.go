package faultserver

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"sync"
	"time"
)

// Resource is content the server serves at a path.
type Resource struct {
	// Path is the URL path, starting with "/", e.g. "/file.qcow2".
	Path string
	// Content holds at least Size bytes from offset 0: a [Pattern], a
	// *bytes.Reader, an *os.File (which the caller closes after the server)
	// or any io.ReaderAt safe for concurrent use.
	Content io.ReaderAt
	// Size is the content's length in bytes.
	Size int64
	// ETag is the strong entity tag, quoted (e.g. `"v1"`); a missing pair
	// of quotes is added. Default: derived from the path, the size and,
	// for a Pattern, its seed.
	ETag string
	// ModTime is sent as Last-Modified, in whole seconds. Default:
	// [DefaultModTime].
	ModTime time.Time
	// ContentType defaults to "application/octet-stream".
	ContentType string
}

// DefaultModTime is the Last-Modified of a resource that sets none.
var DefaultModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// DefaultResourcePath, DefaultResourceSeed and DefaultResourceSize describe
// the resource a server serves when given none: 1 MiB of Pattern(1) at
// "/file".
const (
	DefaultResourcePath = "/file"
	DefaultResourceSeed = 1
	DefaultResourceSize = 1 << 20
)

// PatternResource returns a resource of size bytes of [Pattern](seed) at
// path.
func PatternResource(path string, seed uint64, size int64) Resource {
	return Resource{Path: path, Content: Pattern(seed), Size: size}
}

// validate checks r and fills in its defaults.
func (r *Resource) validate() error {
	switch {
	case !strings.HasPrefix(r.Path, "/"):
		return fmt.Errorf("faultserver: resource path %q does not start with /", r.Path)
	case r.Content == nil:
		return fmt.Errorf("faultserver: resource %s has no content", r.Path)
	case r.Size < 0:
		return fmt.Errorf("faultserver: resource %s has negative size %d", r.Path, r.Size)
	}
	if r.ETag == "" {
		h := fnv.New64a()
		h.Write([]byte(r.Path))
		r.ETag = fmt.Sprintf(`"%x-%x`, h.Sum64(), r.Size)
		if p, ok := r.Content.(Pattern); ok {
			r.ETag += fmt.Sprintf("-p%x", uint64(p))
		}
		r.ETag += `"`
	}
	if strings.HasPrefix(r.ETag, "W/") {
		return fmt.Errorf("faultserver: resource %s: ETag %s is weak; ranges need a strong one", r.Path, r.ETag)
	}
	if !strings.HasPrefix(r.ETag, `"`) {
		r.ETag = `"` + r.ETag + `"`
	}
	if r.ModTime.IsZero() {
		r.ModTime = DefaultModTime
	}
	r.ModTime = r.ModTime.UTC().Truncate(time.Second)
	if r.ContentType == "" {
		r.ContentType = "application/octet-stream"
	}
	return nil
}

// Version is what a resource is at one moment: its content and validators.
// Changes ([Server.Change], [Faults.ChangeAfterRequests]) make new versions.
type Version struct {
	// Content is the whole content, for comparing with what a client got.
	Content *io.SectionReader
	ETag    string
	ModTime time.Time
	// Generation counts the changes so far; 0 is the original.
	Generation uint64
}

// resource is a served Resource and its changes. It is safe for concurrent
// use.
type resource struct {
	Resource
	mu sync.Mutex
	// gen counts changes; contentGen the changes that replaced the content.
	gen, contentGen uint64
}

// version returns the current version.
func (r *resource) version() Version {
	r.mu.Lock()
	gen, contentGen := r.gen, r.contentGen
	r.mu.Unlock()
	content := r.Content
	if p, ok := content.(Pattern); ok {
		content = p.generation(contentGen)
	}
	v := Version{
		Content:    io.NewSectionReader(content, 0, r.Size),
		ETag:       r.ETag,
		ModTime:    r.ModTime,
		Generation: gen,
	}
	if gen > 0 {
		v.ETag = fmt.Sprintf(`%s-g%d"`, strings.TrimSuffix(r.ETag, `"`), gen)
		v.ModTime = v.ModTime.Add(time.Duration(gen) * time.Hour)
	}
	return v
}

// errFixedContent is returned when a change of content is asked of a
// resource whose content is not generated.
var errFixedContent = errors.New("only the validators of content other than a Pattern can change")

// change makes a new version: new ETag and Last-Modified (one hour later
// per change), and new content if content is set.
func (r *resource) change(content bool) error {
	if _, ok := r.Content.(Pattern); content && !ok {
		return fmt.Errorf("faultserver: changing %s: %w", r.Path, errFixedContent)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen++
	if content {
		r.contentGen++
	}
	return nil
}
