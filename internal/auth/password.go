package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/slipway-ml/slipway/internal/errs"
)

// argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane).
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

const (
	minPasswordLen = 12
	maxPasswordLen = 256 // bytes; hashing a megabyte of "password" is a denial of service
)

// ValidatePassword checks the password rules.
func ValidatePassword(pw string) error {
	switch {
	case !utf8.ValidString(pw):
		return errs.Invalid("password", "must be valid UTF-8")
	case utf8.RuneCountInString(pw) < minPasswordLen:
		return errs.Invalid("password", "must be at least %d characters", minPasswordLen)
	case len(pw) > maxPasswordLen:
		return errs.Invalid("password", "must be at most %d bytes", maxPasswordLen)
	}
	return nil
}

// HashPassword returns an argon2id hash in the PHC string format.
func HashPassword(pw string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemoryKiB, argonTime, argonThreads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

var errBadHash = errors.New("malformed password hash")

// VerifyPassword reports whether pw matches hash, in constant time for a
// given hash. Parameters are read from the hash so that raising them later
// keeps old hashes valid.
func VerifyPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, errBadHash
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil {
		return false, errBadHash
	}
	// argon2 panics on zero passes or lanes; a huge memory cost would be a
	// denial of service. Neither comes from HashPassword.
	if t < 1 || t > 16 || p < 1 || mem < 8*uint32(p) || mem > 1<<21 {
		return false, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errBadHash
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, mem, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when a user does not exist, so that a
// failed login takes as long whether or not the name is known.
var dummyHash = func() string {
	h, err := HashPassword("slipway-dummy-password")
	if err != nil {
		panic(err)
	}
	return h
}()
