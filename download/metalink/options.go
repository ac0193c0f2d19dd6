package metalink

// Default limits of Parse and Validate. They bound the memory a hostile
// document can make the parser use; raise them with the options below.
const (
	// DefaultMaxBytes is the longest document Parse reads: 4 MiB, enough
	// for about 50,000 sha-256 piece hashes (an 12 GiB file in 256 KiB
	// pieces). Parse stops reading at the limit.
	DefaultMaxBytes = 4 << 20
	// DefaultMaxDepth is the deepest element nesting accepted. Metalink
	// itself needs 4 (metalink/file/pieces/hash); the rest is room for
	// extension elements.
	DefaultMaxDepth = 32
	// DefaultMaxFiles is the most <file> elements in a document.
	DefaultMaxFiles = 1000
	// DefaultMaxURLs is the most url plus metaurl elements of one file.
	DefaultMaxURLs = 1000
	// DefaultMaxPieces is the most piece hashes of one file. A million
	// sha-256 piece hashes take 64 MB of text, so reaching it also needs
	// a larger WithMaxBytes.
	DefaultMaxPieces = 1_000_000
	// DefaultMaxText is the longest text of one element (a description, a
	// URL), in bytes.
	DefaultMaxText = 64 << 10
)

// Option changes a limit or a rule of Parse, ParseBytes and Validate. A
// value ≤ 0 given to a With... option keeps the default.
type Option func(*options)

type options struct {
	maxBytes    int64
	maxDepth    int
	maxFiles    int
	maxURLs     int
	maxPieces   int
	maxText     int
	requireSize bool
}

func buildOptions(opts []Option) *options {
	o := &options{
		maxBytes:  DefaultMaxBytes,
		maxDepth:  DefaultMaxDepth,
		maxFiles:  DefaultMaxFiles,
		maxURLs:   DefaultMaxURLs,
		maxPieces: DefaultMaxPieces,
		maxText:   DefaultMaxText,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	return o
}

// WithMaxBytes sets the document size limit (default DefaultMaxBytes).
func WithMaxBytes(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.maxBytes = n
		}
	}
}

// WithMaxDepth sets the nesting limit (default DefaultMaxDepth).
func WithMaxDepth(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxDepth = n
		}
	}
}

// WithMaxFiles sets the file count limit (default DefaultMaxFiles).
func WithMaxFiles(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxFiles = n
		}
	}
}

// WithMaxURLs sets the per-file url+metaurl limit (default
// DefaultMaxURLs).
func WithMaxURLs(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxURLs = n
		}
	}
}

// WithMaxPieces sets the per-file piece hash limit (default
// DefaultMaxPieces).
func WithMaxPieces(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxPieces = n
		}
	}
}

// WithMaxText sets the per-element text limit (default DefaultMaxText).
func WithMaxText(n int) Option {
	return func(o *options) {
		if n > 0 {
			o.maxText = n
		}
	}
}

// RequireSize makes a file without <size> invalid (by default it is
// accepted with File.Size -1). A downloader that splits the file into
// ranges or checks piece hashes wants it.
func RequireSize() Option {
	return func(o *options) { o.requireSize = true }
}
