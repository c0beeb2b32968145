package mediasim

// ParseAnswer parses the TwiML a gateway answered a voice webhook with,
// for clients that POST the webhook themselves (to see the HTTP status and
// headers, for example). It returns an error when body is not a TwiML
// <Response>.
func ParseAnswer(body []byte) (Answer, error) { return parseTwiML(body) }
