package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/convgateway/gateway/ports"
)

// Thread returns the thread stored for user, or an error wrapping
// ports.ErrNotFound. It blocks for one query or until ctx is done.
func (s *Store) Thread(ctx context.Context, user string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	var id string
	err := s.pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = $1", user).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: thread: %w", ports.ErrNotFound)
	}
	if err != nil {
		return "", classify(ctx, "thread", err)
	}
	return id, nil
}

// SaveThread stores threadID for user unless user has a thread, and
// returns the stored thread. The primary key decides among concurrent
// callers in every process: all get the first writer's thread. It blocks
// for two queries or until ctx is done.
func (s *Store) SaveThread(ctx context.Context, user, threadID string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO threads (user_id, thread_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING", user, threadID)
	if err != nil {
		return "", classify(ctx, "save thread", err)
	}
	// A statement of its own, so that its snapshot sees a row committed by
	// a concurrent writer that the insert waited for.
	var id string
	if err := s.pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = $1", user).Scan(&id); err != nil {
		return "", classify(ctx, "save thread: read back", err)
	}
	return id, nil
}

// ReplaceThread stores threadID for user if user's thread is old or user
// has none, and returns the stored thread. The upsert's condition is
// checked on the row it locks, so that among concurrent callers replacing
// one old thread, in every process, one replaces it and all get its
// thread. It blocks for two queries or until ctx is done.
func (s *Store) ReplaceThread(ctx context.Context, user, old, threadID string) (string, error) {
	if err := s.ready(ctx); err != nil {
		return "", err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO threads (user_id, thread_id) VALUES ($1, $2)
ON CONFLICT (user_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, created_at = now()
WHERE threads.thread_id = $3`, user, threadID, old)
	if err != nil {
		return "", classify(ctx, "replace thread", err)
	}
	var id string
	if err := s.pool.QueryRow(ctx, "SELECT thread_id FROM threads WHERE user_id = $1", user).Scan(&id); err != nil {
		return "", classify(ctx, "replace thread: read back", err)
	}
	return id, nil
}
