package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/arpc-go/arpc/pkg/rpc"
)

// connFlags say how to reach and authenticate to the server.
type connFlags struct {
	token, tokenFile          string
	useTLS, insecure          bool
	caFile, certFile, keyFile string
	serverName                string
}

// tokenEnv is the environment variable that holds a token when no flag
// gives one (a flag shows in the process list; the environment does not).
const tokenEnv = "ARPC_TOKEN"

const connHelp = `  --token T       send T as the credential (rpc.WithToken); default $ARPC_TOKEN
  --token-file F  read the credential from the file F (its first line)
  --tls           speak TLS, trusting the system's roots
  --tls-ca F      trust the CA certificates in the PEM file F (implies --tls)
  --tls-cert F --tls-key K
                  present this client certificate (mutual TLS; implies --tls)
  --tls-server-name N
                  expect the server's certificate to name N (default: ADDR's host)
  --tls-insecure  accept any server certificate (tests only: anyone in the
                  middle can read and change everything)
`

func (f *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.token, "token", "", "")
	fs.StringVar(&f.tokenFile, "token-file", "", "")
	fs.BoolVar(&f.useTLS, "tls", false, "")
	fs.StringVar(&f.caFile, "tls-ca", "", "")
	fs.StringVar(&f.certFile, "tls-cert", "", "")
	fs.StringVar(&f.keyFile, "tls-key", "", "")
	fs.StringVar(&f.serverName, "tls-server-name", "", "")
	fs.BoolVar(&f.insecure, "tls-insecure", false, "")
}

// options returns the client options the flags ask for.
func (f *connFlags) options() ([]rpc.ClientOption, error) {
	var opts []rpc.ClientOption
	token := f.token
	switch {
	case f.token != "" && f.tokenFile != "":
		return nil, errors.New("--token and --token-file: give one")
	case f.tokenFile != "":
		b, err := os.ReadFile(f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-file: %w", err)
		}
		token, _, _ = strings.Cut(string(b), "\n")
		token = strings.TrimSpace(token)
	case token == "":
		token = os.Getenv(tokenEnv)
	}
	if token != "" {
		opts = append(opts, rpc.WithToken(token))
	}
	cfg, err := f.tlsConfig()
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		opts = append(opts, rpc.WithClientTLS(cfg))
	}
	return opts, nil
}

// tlsConfig builds the client's TLS configuration, or nil without TLS.
func (f *connFlags) tlsConfig() (*tls.Config, error) {
	if !f.useTLS && f.caFile == "" && f.certFile == "" && f.keyFile == "" && !f.insecure && f.serverName == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.serverName, InsecureSkipVerify: f.insecure}
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca: no PEM certificate in %s", f.caFile)
		}
		cfg.RootCAs = pool
	}
	if (f.certFile == "") != (f.keyFile == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if f.certFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
