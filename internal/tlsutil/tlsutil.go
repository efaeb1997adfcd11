package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// DevCA is a throwaway CA and one server certificate it signed, PEM encoded.
type DevCA struct {
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
}

// NewDevCA creates a CA and a server certificate valid for hosts (DNS names
// or IP addresses) for validity. Development and tests only.
func NewDevCA(hosts []string, validity time.Duration) (*DevCA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "scram-proxy development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &DevCA{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

// WriteFiles writes ca.pem, server.pem and server-key.pem (0600) into dir and
// returns their paths.
func (d *DevCA) WriteFiles(dir string) (ca, cert, key string, err error) {
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{ca, d.CAPEM, 0o644}, {cert, d.CertPEM, 0o644}, {key, d.KeyPEM, 0o600}} {
		if err = os.WriteFile(f.path, f.data, f.mode); err != nil {
			return "", "", "", err
		}
	}
	return ca, cert, key, nil
}

// ServerConfig loads a certificate and key and returns a listener TLS
// configuration with the given minimum version ("1.2" or "1.3"). A non-empty
// clientCAFile makes client certificates required and verified against it.
// Every problem is returned, joined, each naming the file's role as the
// configuration does (cert_file, key_file, client_ca_file) for the caller to
// prefix with its section.
func ServerConfig(certFile, keyFile, minVersion, clientCAFile string) (*tls.Config, error) {
	var errs []error
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		errs = append(errs, err)
	}
	v := uint16(tls.VersionTLS12)
	switch minVersion {
	case "", "1.2":
	case "1.3":
		v = tls.VersionTLS13
	default:
		errs = append(errs, fmt.Errorf("min_version: unsupported TLS version %q", minVersion))
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: v}
	if clientCAFile != "" {
		pool, err := LoadPool(clientCAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("client_ca_file: %w", err))
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return cfg, nil
}

// loadKeyPair reads a PEM certificate chain and its key, naming the files
// that failed (cert_file, key_file), or both when they do not match.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, certErr := os.ReadFile(certFile)
	keyPEM, keyErr := os.ReadFile(keyFile)
	if certErr != nil || keyErr != nil {
		var errs []error
		if certErr != nil {
			errs = append(errs, fmt.Errorf("cert_file: %w", certErr))
		}
		if keyErr != nil {
			errs = append(errs, fmt.Errorf("key_file: %w", keyErr))
		}
		return tls.Certificate{}, errors.Join(errs...)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cert_file, key_file: %w", err)
	}
	return cert, nil
}

// ClientConfig trusts only the CA in caPEM.
func ClientConfig(caPEM []byte, serverName string) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("no certificates in CA PEM")
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12}, nil
}
