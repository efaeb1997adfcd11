package config

import (
	"net"
	"time"
)

// Config is the whole configuration. Keys are the mapstructure tags joined
// with dots, e.g. listener.tls.cert_file.
type Config struct {
	Listener    Listener    `mapstructure:"listener"`
	SASL        SASL        `mapstructure:"sasl"`
	Credentials Credentials `mapstructure:"credentials"`
	Upstream    Upstream    `mapstructure:"upstream"`
	Log         Log         `mapstructure:"log"`
}

// Listener is the client-facing side.
type Listener struct {
	Address           string        `mapstructure:"address"`
	AdvertisedAddress string        `mapstructure:"advertised_address"`
	TLS               ListenerTLS   `mapstructure:"tls"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	MaxConnections    int           `mapstructure:"max_connections"`
	MaxRequestSize    int           `mapstructure:"max_request_size"`
}

// ListenerTLS terminates TLS on the listener.
type ListenerTLS struct {
	Enabled    bool   `mapstructure:"enabled"`
	CertFile   string `mapstructure:"cert_file"`
	KeyFile    string `mapstructure:"key_file"`
	MinVersion string `mapstructure:"min_version"`
}

// SASL is the authentication gate.
type SASL struct {
	Mechanisms      []string      `mapstructure:"mechanisms"`
	FailedAuthDelay time.Duration `mapstructure:"failed_auth_delay"`
	MaxReceiveSize  int           `mapstructure:"max_receive_size"`
	AuthTimeout     time.Duration `mapstructure:"auth_timeout"`
}

// Credentials names where users come from.
type Credentials struct {
	File string `mapstructure:"file"`
}

// Upstream is the broker side.
type Upstream struct {
	BootstrapServers []string      `mapstructure:"bootstrap_servers"`
	DialTimeout      time.Duration `mapstructure:"dial_timeout"`
}

// Log configures the process logger.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// Defaults returns the configuration used for every key not set elsewhere.
// The values follow Kafka's broker defaults where one exists.
func Defaults() Config {
	return Config{
		Listener: Listener{
			Address:        "0.0.0.0:9096",
			TLS:            ListenerTLS{Enabled: true, MinVersion: "1.2"},
			IdleTimeout:    10 * time.Minute, // connections.max.idle.ms
			MaxConnections: 10000,
			MaxRequestSize: 104857600, // socket.request.max.bytes
		},
		SASL: SASL{
			Mechanisms:      []string{"SCRAM-SHA-512"},
			FailedAuthDelay: 100 * time.Millisecond, // connection.failed.authentication.delay.ms
			MaxReceiveSize:  524288,                 // sasl.server.max.receive.size
			AuthTimeout:     10 * time.Second,
		},
		Upstream: Upstream{DialTimeout: 10 * time.Second},
		Log:      Log{Level: "info", Format: "json"},
	}
}

// AdvertisedAddress is what clients are told to connect to: the configured
// advertised address, or the listener address.
func (c Config) AdvertisedAddress() string {
	if c.Listener.AdvertisedAddress != "" {
		return c.Listener.AdvertisedAddress
	}
	return c.Listener.Address
}

// unspecifiedHost reports a listener host clients cannot dial.
func unspecifiedHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "" || (ip != nil && ip.IsUnspecified())
}
