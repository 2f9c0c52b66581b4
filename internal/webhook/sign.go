// Package webhook tells receivers (the serving layer, mostly) what changed
// in Slipway: endpoints that admins register, messages made from the
// outbox of events, and their delivery, signed per Standard Webhooks,
// retried with backoff for days, and logged attempt by attempt.
package webhook

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretPrefix starts every signing secret, as Standard Webhooks has it.
const SecretPrefix = "whsec_"

// secretBytes is the size of a generated secret's key (the specification
// asks for 24 to 64).
const secretBytes = 32

// NewSecret makes a signing secret: whsec_ and the base64 of 32 random
// bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey is the HMAC key of a secret: the base64-decoded part after the
// prefix.
func secretKey(secret string) ([]byte, error) {
	s, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return nil, errors.New("a signing secret starts with " + SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("a signing secret is whsec_ and base64: %w", err)
	}
	return key, nil
}

// Sign returns the webhook-signature header of one attempt: a v1
// signature of id.timestamp.body for each secret, space-separated (two
// during a rotation).
func Sign(id string, timestamp int64, body []byte, secrets ...string) (string, error) {
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		key, err := secretKey(s)
		if err != nil {
			return "", err
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(strconv.FormatInt(timestamp, 10)))
		mac.Write([]byte{'.'})
		mac.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return strings.Join(sigs, " "), nil
}

// Sealer encrypts secrets at rest with AES-256-GCM under a key from the
// configuration: a copy of the database alone does not give them away.
// It seals with its current key and opens with the current key or the
// previous ones, so that the key can be rotated: deploy the new key with
// the old one as previous, reseal (Service.ResealSecrets), then drop the
// old key.
type Sealer struct{ aeads []cipher.AEAD } // [0] seals; all open

// NewSealer makes a Sealer from a 32-byte key and any previous keys.
func NewSealer(key []byte, previous ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	for i, k := range append([][]byte{key}, previous...) {
		if len(k) != 32 {
			return nil, fmt.Errorf("the webhook key must be 32 bytes, got %d", len(k))
		}
		if i > 0 && bytes.Equal(k, key) {
			return nil, errors.New("a previous webhook key is the current key")
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.aeads = append(s.aeads, aead)
	}
	return s, nil
}

// sealAD binds a sealed value to its use.
var sealAD = []byte("slipway webhook secret")

// Seal encrypts a secret under the current key: a random nonce, then the
// ciphertext.
func (s *Sealer) Seal(secret string) []byte {
	aead := s.aeads[0]
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(secret), sealAD)
}

// Open decrypts what Seal made, under the current key or a previous one.
func (s *Sealer) Open(sealed []byte) (string, error) {
	secret, _, err := s.open(sealed)
	return secret, err
}

// open also says whether the current key opened it.
func (s *Sealer) open(sealed []byte) (secret string, current bool, err error) {
	n := s.aeads[0].NonceSize()
	if len(sealed) < n {
		return "", false, errors.New("sealed secret too short")
	}
	for i, aead := range s.aeads {
		if b, err := aead.Open(nil, sealed[:n], sealed[n:], sealAD); err == nil {
			return string(b), i == 0, nil
		}
	}
	return "", false, errors.New("the webhook secret opens with neither SLIPWAY_WEBHOOK_KEY nor SLIPWAY_WEBHOOK_KEY_PREVIOUS (was the key changed without keeping the old one as previous?)")
}
