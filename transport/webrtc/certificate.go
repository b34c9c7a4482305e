package webrtc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Certificate is the server's DTLS identity: a self-signed ECDSA P-256
// certificate, made once per server and shared by all sessions (its
// fingerprint goes in every answer, so browsers can cache nothing wrong).
type Certificate struct {
	tls tls.Certificate
	fp  Fingerprint
}

// NewCertificate generates a self-signed ECDSA P-256 certificate valid for
// 30 days from now (browsers do not check the dates, only the fingerprint).
func NewCertificate() (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := crand.Int(crand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "sfu"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(30 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &Certificate{
		tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		fp:  Fingerprint{Algorithm: "sha-256", Value: fingerprintHex(crypto.SHA256, der)},
	}, nil
}

// Fingerprint returns the sha-256 fingerprint to put in a=fingerprint.
func (c *Certificate) Fingerprint() Fingerprint { return c.fp }

func fingerprintHex(h crypto.Hash, der []byte) string {
	d := h.New()
	d.Write(der)
	sum := strings.ToUpper(hex.EncodeToString(d.Sum(nil)))
	var b strings.Builder
	for i := 0; i < len(sum); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(sum[i : i+2])
	}
	return b.String()
}

var hashByName = map[string]crypto.Hash{
	"sha-1":   crypto.SHA1,
	"sha-224": crypto.SHA224,
	"sha-256": crypto.SHA256,
	"sha-384": crypto.SHA384,
	"sha-512": crypto.SHA512,
}

// ErrFingerprint means the peer's DTLS certificate does not match the
// fingerprint from its SDP.
var ErrFingerprint = errors.New("webrtc: DTLS certificate does not match SDP fingerprint")

// verifyFingerprint checks a DER certificate against an SDP fingerprint.
func verifyFingerprint(want Fingerprint, der []byte) error {
	h, ok := hashByName[strings.ToLower(want.Algorithm)]
	if !ok || !h.Available() {
		return fmt.Errorf("%w: unsupported hash %q", ErrFingerprint, want.Algorithm)
	}
	if !strings.EqualFold(fingerprintHex(h, der), want.Value) {
		return ErrFingerprint
	}
	return nil
}
