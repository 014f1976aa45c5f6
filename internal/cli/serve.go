package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

// newServeCmd returns `courier serve`. Placeholder: the lead replaces this
// file with the real command, keeping the signature (root.go calls it).
// Errors returned by its RunE exit with 1; wrap one in usageError for 2.
func newServeCmd(e *env) *cobra.Command {
	_ = e
	return &cobra.Command{
		Use:   "serve",
		Short: "Run a courier server",
		Args:  argsRange(0, 0),
		RunE: func(*cobra.Command, []string) error {
			return errors.New("serve: not yet built")
		},
	}
}
