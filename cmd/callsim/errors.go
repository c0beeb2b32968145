package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
)

// explain turns a failed request to target into an error saying what to
// check.
func explain(target string, err error) error {
	var dns *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var record tls.RecordHeaderError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot connect to %s: connection refused. Is the gateway running and listening there?", target)
	case errors.As(err, &dns):
		return fmt.Errorf("cannot find the host of %s: %v. Check the URL", target, dns)
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &invalid), errors.As(err, &verify):
		return fmt.Errorf("%s: its TLS certificate is not trusted (%v). Twilio accepts only certificates from a trusted authority that match the host", target, err)
	case errors.As(err, &record):
		return fmt.Errorf("%s: the server does not speak TLS there. Use http:// for a plain HTTP port", target)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: interrupted", target)
	case errors.Is(err, context.DeadlineExceeded), os.IsTimeout(err):
		return fmt.Errorf("%s did not answer within %s, as long as Twilio waits (then the call fails with error 11200)", target, webhookLimit)
	}
	return fmt.Errorf("%s: %w", target, err)
}

// statusError explains a webhook's answer other than 200.
func statusError(target string, res *http.Response, body []byte, publicURL string) error {
	switch res.StatusCode {
	case http.StatusForbidden:
		return fmt.Errorf("%s answered 403 Forbidden: the gateway rejected the X-Twilio-Signature. "+
			"Either the auth token is not the gateway's TWILIO_AUTH_TOKEN, or the gateway's PUBLIC_URL is not %s "+
			"(signatures cover the URL Twilio calls; pass --public-url with the gateway's PUBLIC_URL when you send to another address)",
			target, publicURL)
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return fmt.Errorf("%s answered %s: is this the gateway's address?", target, res.Status)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return fmt.Errorf("%s answered %s: the gateway, or a proxy in front of it, is not available (a gateway that is shutting down answers 503)", target, res.Status)
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return fmt.Errorf("%s answered %s: %s", target, res.Status, text)
}
