package template

import (
	"context"
	"errors"
)

// Source implements Getter.TemplateSource over g's GetByUUID, so that every
// implementation answers it the same way: the URL and checksum of the active
// template with uuid; found false and a nil error when GetByUUID reports
// ErrNotFound (an unknown UUID, a removed template, a string no template
// has as its UUID, "" included); any other error as it is.
//
// It only calls g.GetByUUID, so an implementation's TemplateSource can be
// "return template.Source(ctx, r, uuid)". It is as safe for concurrent use
// as g is.
func Source(ctx context.Context, g Getter, uuid string) (url, checksum string, found bool, err error) {
	t, err := g.GetByUUID(ctx, uuid)
	switch {
	case errors.Is(err, ErrNotFound):
		return "", "", false, nil
	case err != nil:
		return "", "", false, err
	case !t.Removed.IsZero():
		// GetByUUID without IncludeRemoved should never return one; a
		// removed template must not be offered for download regardless.
		return "", "", false, nil
	}
	return t.URL, t.Checksum, true, nil
}
