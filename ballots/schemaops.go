package ballots

import "context"

// The migration functions of migrate.go and check.go take the database
// handle; these are the same operations on a Store, so that code outside
// this package never reaches for Store.DB.

// Migrate applies the embedded migrations the store's database has not
// applied yet and returns their names (see the function Migrate).
func (s *Store) Migrate(ctx context.Context) ([]string, error) {
	return Migrate(ctx, s.DB)
}

// CheckSchema returns the migrations the store's database lacks, or a
// *SchemaError when its schema is newer or altered (see the function
// CheckSchema).
func (s *Store) CheckSchema(ctx context.Context) ([]string, error) {
	return CheckSchema(ctx, s.DB)
}

// MigrationStatus lists every migration, embedded or applied, with its
// state in the store's database (see the function MigrationStatus).
func (s *Store) MigrationStatus(ctx context.Context) ([]MigrationState, error) {
	return MigrationStatus(ctx, s.DB)
}

// PendingMigrations returns the migrations the store's database has not
// applied yet (see the function PendingMigrations).
func (s *Store) PendingMigrations(ctx context.Context) ([]string, error) {
	return PendingMigrations(ctx, s.DB)
}

// RefreshTokens returns the store of OAuth2 refresh tokens in the store's
// database, encrypted under a key derived from secret (see
// NewRefreshTokens).
func (s *Store) RefreshTokens(secret string) (*RefreshTokens, error) {
	return NewRefreshTokens(s.DB, secret)
}
