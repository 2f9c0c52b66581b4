package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// randomToken returns n random bytes in base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// digest is what the database keeps of a session id or API token: both have
// 256 bits of entropy, so a fast hash is enough (no KDF needed).
func digest(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
