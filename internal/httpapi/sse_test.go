package httpapi

import (
	"bufio"
	"io"
	"strings"
)

// SSEEvent is one item of a server-sent event stream as a plain client sees
// it: an event (ID and Data, Event when named) or a comment line. It is
// exported for the external e2e tests of this directory.
type SSEEvent struct {
	ID, Event, Data string
	Comment         string // set for a comment line, which is its own item
}

// SSEStream parses body in a goroutine, line by line as the SSE format
// says, and delivers each event and comment on the channel, which is closed
// when body ends or fails. The caller closes body and drains the channel.
func SSEStream(body io.Reader) <-chan SSEEvent {
	out := make(chan SSEEvent, 64)
	go func() {
		defer close(out)
		br := bufio.NewReader(body)
		var ev SSEEvent
		var data []string
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return // a partial line at EOF is no event
			}
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if line == "" {
				if data != nil {
					ev.Data = strings.Join(data, "\n")
					out <- ev
				}
				ev, data = SSEEvent{}, nil
				continue
			}
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "":
				out <- SSEEvent{Comment: value}
			case "id":
				ev.ID = value
			case "event":
				ev.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}()
	return out
}
