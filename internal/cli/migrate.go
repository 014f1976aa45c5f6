package cli

import (
	"fmt"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/courierhq/courier/internal/server"
	"github.com/courierhq/courier/internal/store/pgstore"
)

const migrateLong = `Create or upgrade courier's schema in a PostgreSQL database.

The migrations are built into this binary and versioned; those the
database lacks are applied in order, each in its own transaction. Several
nodes may run it at once (an advisory lock serialises them), so it can run
at every deployment before the servers start. Tables are created in the
first schema of the connection's search_path (public unless the URL says
?search_path=…).

The embedded store needs no migration.`

// newMigrateCmd returns `courier migrate`.
func newMigrateCmd(e *env) *cobra.Command {
	var dsn string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the schema of a PostgreSQL store",
		Long:  migrateLong,
		Args:  argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !server.IsPostgres(dsn) {
				return usageError{fmt.Errorf("--store %q: want a postgres:// URL", redact(dsn))}
			}
			applied, err := pgstore.Migrate(cmd.Context(), dsn)
			for _, v := range applied {
				fmt.Fprintf(e.stdout, "applied migration %d\n", v)
			}
			if err != nil {
				return err
			}
			ms, err := pgstore.Migrations()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "schema at version %d\n", len(ms))
			return nil
		},
	}
	cmd.Flags().StringVar(&dsn, "store", e.getenv("COURIER_STORE"), "postgres:// URL of the database (env COURIER_STORE)")
	return cmd
}

// redact hides the password of a URL, for messages and logs.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
