package realtime

import (
	"encoding/json"

	"github.com/openai/openai-go/v3/packages/param"
	oai "github.com/openai/openai-go/v3/realtime"

	"github.com/convgateway/gateway/adapters/internal/jsonscan"
	"github.com/convgateway/gateway/ports"
)

// appendAudio appends an input_audio_buffer.append event carrying the
// base64 audio as it is. It is the audio hot path: no encoding/json.
func appendAudio(b, audio []byte) []byte {
	b = append(b, `{"type":"input_audio_buffer.append","audio":`...)
	b = jsonscan.AppendString(b, audio)
	return append(b, '}')
}

// sessionUpdate is the session.update that configures a call: mu-law in
// and out, audio responses only.
func sessionUpdate(cfg ports.SpeechConfig) oai.SessionUpdateEventParam {
	pcmu := oai.RealtimeAudioFormatsUnionParam{OfAudioPCMU: &oai.RealtimeAudioFormatsAudioPCMUParam{Type: "audio/pcmu"}}
	in := oai.RealtimeAudioConfigInputParam{Format: pcmu}
	switch cfg.TurnDetection {
	case "semantic_vad":
		in.TurnDetection.OfSemanticVad = &oai.RealtimeAudioInputTurnDetectionSemanticVadParam{}
	case "server_vad", "":
		in.TurnDetection.OfServerVad = &oai.RealtimeAudioInputTurnDetectionServerVadParam{}
	}
	if cfg.TranscriptionModel != "" {
		in.Transcription.Model = oai.AudioTranscriptionModel(cfg.TranscriptionModel)
	}
	out := oai.RealtimeAudioConfigOutputParam{Format: pcmu}
	if cfg.Voice != "" {
		out.Voice.OfString = param.NewOpt(cfg.Voice)
	}
	session := &oai.RealtimeSessionCreateRequestParam{
		OutputModalities: []string{"audio"},
		Audio:            oai.RealtimeAudioConfigParam{Input: in, Output: out},
	}
	if cfg.Instructions != "" {
		session.Instructions = param.NewOpt(cfg.Instructions)
	}
	return oai.SessionUpdateEventParam{Session: oai.SessionUpdateEventSessionUnionParam{OfRealtime: session}}
}

// userText is the conversation.item.create of a user text message.
func userText(text string) oai.ConversationItemCreateEventParam {
	return oai.ConversationItemCreateEventParam{
		Item: oai.ConversationItemParamOfRealtimeUserMessageItem([]oai.RealtimeConversationItemUserMessageContentParam{
			{Type: "input_text", Text: param.NewOpt(text)},
		}),
	}
}

// responseCreate is a response.create, with instructions for this response
// only when not empty.
func responseCreate(instructions string) oai.ResponseCreateEventParam {
	var e oai.ResponseCreateEventParam
	if instructions != "" {
		e.Response.Instructions = param.NewOpt(instructions)
	}
	return e
}

// truncate is a conversation.item.truncate of an assistant item's audio.
func truncate(itemID string, audioEndMs int) oai.ConversationItemTruncateEventParam {
	return oai.ConversationItemTruncateEventParam{ItemID: itemID, ContentIndex: 0, AudioEndMs: int64(audioEndMs)}
}

// cancel is a response.cancel of the response in progress.
func cancel() oai.ResponseCancelEventParam { return oai.ResponseCancelEventParam{} }

// appendJSON appends the JSON encoding of a client event.
func appendJSON(b []byte, v json.Marshaler) ([]byte, error) {
	j, err := v.MarshalJSON()
	if err != nil {
		return b, err
	}
	return append(b, j...), nil
}
