package oci

import (
	"fmt"

	"github.com/containerd/errdefs"
)

// invalidArg reports a bad request. The CRI field path comes first so that
// the gRPC status a user sees says which part of the request to fix.
func invalidArg(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}
