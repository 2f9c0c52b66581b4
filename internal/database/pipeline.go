package database

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Querier runs statements: a pgx.Tx, or the connection of a Pipeline.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// Pipeline runs one transaction in as few round trips to the database as
// its statements allow, for write paths whose rate round trips bound:
// BEGIN travels with the batch first, and COMMIT with the batch fn returns.
//
// fn reads the results of first from br and must close br before it runs
// other statements on q; the batch it returns (nil for none) is sent with
// COMMIT, and its results are only checked for errors. An error from fn,
// or from any statement, rolls the transaction back.
func Pipeline(ctx context.Context, db *pgxpool.Pool, first *pgx.Batch, fn func(q Querier, br pgx.BatchResults) (*pgx.Batch, error)) (err error) {
	conn, err := db.Acquire(ctx)
	if err != nil {
		return err
	}
	// the pool closes a connection given back inside a transaction; a
	// ROLLBACK keeps it for the next caller
	defer conn.Release()
	defer func() {
		if conn.Conn().PgConn().TxStatus() != 'I' && !conn.Conn().IsClosed() {
			if _, rerr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Conn().Close(context.WithoutCancel(ctx))
			}
		}
	}()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	if first != nil {
		b.QueuedQueries = append(b.QueuedQueries, first.QueuedQueries...)
	}
	br := conn.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return fmt.Errorf("begin: %w", err)
	}
	last, err := fn(conn, br)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}

	b = &pgx.Batch{}
	if last != nil {
		b.QueuedQueries = append(b.QueuedQueries, last.QueuedQueries...)
	}
	b.Queue("COMMIT")
	br = conn.SendBatch(ctx, b)
	for i := range b.Len() {
		var tag pgconn.CommandTag
		if tag, err = br.Exec(); err != nil {
			break
		}
		if i == b.Len()-1 && tag.String() == "ROLLBACK" {
			// an error went unreported before: PostgreSQL rolled back
			err = pgx.ErrTxCommitRollback
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
