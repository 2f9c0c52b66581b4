package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/slipway-ml/slipway/internal/auth"
	"github.com/slipway-ml/slipway/internal/errs"
	"github.com/slipway-ml/slipway/internal/idempotency"
)

// IdempotencyHeader is the request header a client sets on a POST it may
// retry.
const IdempotencyHeader = "Idempotency-Key"

// secretAnswers are POST routes whose answer holds a secret (a new API
// token): Slipway does not keep it, so it cannot replay it.
var secretAnswers = map[string]bool{
	"/api/v1/tokens":             true,
	"/api/v1/users/:name/tokens": true,
	// a webhook signing secret: kept sealed, never in clear in the
	// table of answers
	"/api/v1/webhooks":            true,
	"/api/v1/webhooks/:id/rotate": true,
}

// keptHeaders are the headers of an answer that a replay gives again.
var keptHeaders = []string{echo.HeaderContentType, echo.HeaderLocation, "ETag", "Cache-Control"}

// maxKeptBody bounds the answer kept per key: API answers are JSON, the
// largest a draft of a thousand artifacts with their upload URLs.
const maxKeptBody = 8 << 20

// idempotent gives a retried POST (same Idempotency-Key, same request) the
// first answer, and refuses the key for another request (422). Bodies of
// ordinary routes are fingerprinted here; streaming routes (uploads)
// compute their own fingerprint, and on a retry read the body without
// doing the work.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := c.Request().Header.Get(IdempotencyHeader)
		if key == "" {
			return next(c)
		}
		if err := idempotency.ValidateKey(key); err != nil {
			return err
		}
		if secretAnswers[c.Path()] {
			return errs.Invalid(IdempotencyHeader, "is not supported here: the answer holds a secret that Slipway does not keep, so it cannot give it again")
		}
		req := c.Request()
		ctx := req.Context()
		id, _ := auth.IdentityFrom(ctx)
		streaming := isStreaming(c)
		var fp string
		if !streaming {
			body, err := io.ReadAll(req.Body) // bounded by the body limit
			if err != nil {
				return err
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			h := sha256.New()
			fmt.Fprintf(h, "%s\x00", req.Header.Get(echo.HeaderContentType))
			h.Write(body)
			fp = hex.EncodeToString(h.Sum(nil))
		}
		claim, err := s.idem.Begin(ctx, id.User.ID, key, req.Method, req.URL.Path)
		if err != nil {
			return err
		}
		state := &idempotency.Request{Verify: claim.Replay != nil}
		c.SetRequest(req.WithContext(idempotency.WithRequest(ctx, state)))

		if claim.Replay != nil {
			if streaming {
				if err := next(c); !errors.Is(err, idempotency.ErrVerified) {
					return err
				}
				fp = state.Fingerprint
			}
			if fp != claim.Fingerprint {
				return fmt.Errorf("Idempotency-Key %q was used with another request; use a new key: %w", key, errs.ErrUnprocessable)
			}
			h := c.Response().Header()
			for k, vs := range claim.Replay.Header {
				h[k] = vs
			}
			h.Set("Idempotent-Replayed", "true")
			c.Response().WriteHeader(claim.Replay.Status)
			_, err := c.Response().Write(claim.Replay.Body)
			return err
		}

		rec := &recorder{ResponseWriter: c.Response().Writer}
		c.Response().Writer = rec
		if err := next(c); err != nil {
			c.Error(err) // answer now, so that the answer can be kept
		}
		status := c.Response().Status
		// Not kept, so that a retry runs again: Slipway's failures (5xx),
		// a client that went away (its request may not have finished),
		// an answer too large to keep, and refused uploads (their
		// fingerprint covers files the refusal did not read).
		if status >= 500 || ctx.Err() != nil || rec.overflow || (streaming && status >= 400) {
			return s.idem.Release(ctx, id.User.ID, key)
		}
		if streaming {
			fp = state.Fingerprint
		}
		kept := http.Header{}
		for _, k := range keptHeaders {
			if v := c.Response().Header().Get(k); v != "" {
				kept.Set(k, v)
			}
		}
		return s.idem.Complete(ctx, id.User.ID, key, fp, idempotency.Answer{Status: status, Header: kept, Body: rec.buf.Bytes()})
	}
}

// recorder keeps a copy of what is written, up to maxKeptBody.
type recorder struct {
	http.ResponseWriter
	buf      bytes.Buffer
	overflow bool
}

func (r *recorder) Write(p []byte) (int, error) {
	if !r.overflow {
		if r.buf.Len()+len(p) > maxKeptBody {
			r.overflow = true
			r.buf.Reset()
		} else {
			r.buf.Write(p)
		}
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
