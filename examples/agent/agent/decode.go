package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/directdl/directdl/download"
)

// Bodies larger than these are refused: a download request or a
// certificate is small; a plan lists a few disks and their chains.
const (
	maxRequestBody = 1 << 20
	maxPlanBody    = 8 << 20
)

// BadRequestError is an API request that cannot be carried out as sent:
// bad JSON, an unknown or missing field, a bad value. The message names
// the field and what to send instead.
type BadRequestError struct {
	Field  string // the JSON field at fault; "" for the body as a whole
	Reason string
}

func (e *BadRequestError) Error() string {
	if e.Field == "" {
		return "request body: " + e.Reason
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Reason)
}

func badField(field, format string, args ...any) error {
	return &BadRequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// decodeJSON reads exactly one JSON object from r into v, refusing unknown
// fields, trailing data and bodies over limit bytes.
func decodeJSON(r io.Reader, limit int64, v any) error {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return &BadRequestError{Reason: "reading it: " + err.Error()}
	}
	if int64(len(data)) > limit {
		return &BadRequestError{Reason: fmt.Sprintf("more than %d bytes", limit)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &BadRequestError{Reason: "empty; send a JSON object"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &BadRequestError{Reason: "data after the JSON object; send one object"}
	}
	return nil
}

// jsonError turns encoding/json's errors into messages naming the field.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &BadRequestError{Reason: fmt.Sprintf("invalid JSON at byte %d: %v", syn.Offset, syn)}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &BadRequestError{Reason: fmt.Sprintf("want a JSON object, got %s", typ.Value)}
		}
		return badField(typ.Field, "want %s, got %s", typeName(typ.Type.String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &BadRequestError{Reason: "invalid JSON: it ends too early"}
	}
	if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return badField(strings.Trim(f, `"`), "unknown field; see the API documentation for the fields this request takes")
	}
	return &BadRequestError{Reason: "invalid JSON: " + err.Error()}
}

func typeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "an object"
}

// DecodeDownloadRequest reads and checks the body of POST /v1/downloads.
// Errors are *BadRequestErrors naming the field.
func DecodeDownloadRequest(r io.Reader) (DownloadRequest, error) {
	var req DownloadRequest
	if err := decodeJSON(r, maxRequestBody, &req); err != nil {
		return DownloadRequest{}, err
	}
	return req, req.Validate()
}

// Validate checks the request without contacting anything: URL, name,
// checksum, size and format.
func (req DownloadRequest) Validate() error {
	if req.URL == "" {
		return badField("url", "missing; give the template's http, https or nfs URL")
	}
	u, err := url.Parse(req.URL)
	if err != nil {
		return badField("url", "not a URL: %v", download.RedactURL(err.Error()))
	}
	switch u.Scheme {
	case "http", "https", "nfs":
	default:
		return badField("url", "scheme %q; use http, https or nfs", u.Scheme)
	}
	if u.Host == "" {
		return badField("url", "%s has no host", download.RedactURL(req.URL))
	}
	if err := ValidateName(req.Name); err != nil {
		return badField("name", "%v", err)
	}
	if req.Checksum != "" {
		if _, err := download.ParseChecksum(req.Checksum); err != nil {
			return badField("checksum", "%v", err)
		}
	}
	if req.Size < 0 {
		return badField("size", "%d is negative; give the size in bytes, or leave it out", req.Size)
	}
	switch req.Format {
	case "", "qcow2", "raw":
	default:
		return badField("format", "%q; use qcow2 or raw, or leave it out to detect it", req.Format)
	}
	return nil
}

// maxName is the longest file name most Linux file systems take.
const maxName = 255

// ValidateName checks that name is a plain file name for the pool: 1 to
// 255 bytes of ASCII letters, digits, '.', '_', '-' and '+', not starting
// with '.' (hidden names are the agent's and the download engine's own:
// partial downloads, the staging directory). No '/', so it cannot leave
// the pool, and no ':', which QEMU would read as a protocol in a backing
// file name.
func ValidateName(name string) error {
	if name == "" {
		return errors.New("missing; give a plain file name such as 7f3c2a.qcow2")
	}
	if len(name) > maxName {
		return fmt.Errorf("%d bytes, more than %d", len(name), maxName)
	}
	if strings.Contains(name, "/") {
		return fmt.Errorf("%q has '/'; give a file name, not a path", name)
	}
	if name[0] == '.' {
		return fmt.Errorf("%q starts with '.'; hidden names are reserved for partial downloads", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-', c == '+':
		default:
			return fmt.Errorf("%q has %q; use letters, digits, '.', '_', '-' and '+'", name, c)
		}
	}
	return nil
}

// DecodeImportRequest reads and checks the body of PUT
// /v1/truststore/{alias}.
func DecodeImportRequest(r io.Reader) (ImportRequest, error) {
	var req ImportRequest
	if err := decodeJSON(r, maxRequestBody, &req); err != nil {
		return ImportRequest{}, err
	}
	if strings.TrimSpace(req.PEM) == "" {
		return ImportRequest{}, badField("pem", "missing; give the certificate as PEM")
	}
	return req, nil
}
