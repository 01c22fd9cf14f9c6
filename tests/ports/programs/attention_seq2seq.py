"""A GRU encoder-decoder with additive (Bahdanau) attention, as PyTorch's translation tutorial
builds it: ``nn.Embedding``, ``nn.GRU(batch_first=True)``, attention scores by two Linears,
``tanh`` and a third, ``softmax`` and ``bmm`` for the context, ``torch.cat`` of embedding and
context, teacher forcing, ``log_softmax`` and ``NLLLoss`` over the flattened outputs, Adam."""

import torch
import torch.nn as nn
import torch.nn.functional as F

SOS, MAX_LENGTH = 0, 6


class EncoderRNN(nn.Module):
    def __init__(self, input_size, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True)

    def forward(self, input):
        return self.gru(self.embedding(input))


class BahdanauAttention(nn.Module):
    def __init__(self, hidden_size):
        super().__init__()
        self.Wa = nn.Linear(hidden_size, hidden_size)
        self.Ua = nn.Linear(hidden_size, hidden_size)
        self.Va = nn.Linear(hidden_size, 1)

    def forward(self, query, keys):
        scores = self.Va(torch.tanh(self.Wa(query) + self.Ua(keys)))
        scores = scores.squeeze(2).unsqueeze(1)
        weights = F.softmax(scores, dim=-1)
        return torch.bmm(weights, keys), weights


class AttnDecoderRNN(nn.Module):
    def __init__(self, hidden_size, output_size):
        super().__init__()
        self.embedding = nn.Embedding(output_size, hidden_size)
        self.attention = BahdanauAttention(hidden_size)
        self.gru = nn.GRU(2 * hidden_size, hidden_size, batch_first=True)
        self.out = nn.Linear(hidden_size, output_size)

    def forward(self, encoder_outputs, encoder_hidden, target_tensor):
        batch_size = encoder_outputs.size(0)
        decoder_input = torch.empty(batch_size, 1, dtype=torch.long).fill_(SOS)
        decoder_hidden = encoder_hidden
        decoder_outputs, attentions = [], []
        for i in range(MAX_LENGTH):
            embedded = self.embedding(decoder_input)
            query = decoder_hidden.permute(1, 0, 2)
            context, attn_weights = self.attention(query, encoder_outputs)
            output, decoder_hidden = self.gru(torch.cat((embedded, context), dim=2),
                                              decoder_hidden)
            decoder_outputs.append(self.out(output))
            attentions.append(attn_weights)
            decoder_input = target_tensor[:, i].unsqueeze(1)   # teacher forcing
        decoder_outputs = F.log_softmax(torch.cat(decoder_outputs, dim=1), dim=-1)
        return decoder_outputs, decoder_hidden, torch.cat(attentions, dim=1)


def run(ports):
    encoder, decoder = EncoderRNN(10, 12), AttnDecoderRNN(12, 9)
    ports.start("encoder", encoder)
    ports.start("decoder", decoder)
    encoder_optimizer = torch.optim.Adam(encoder.parameters(), lr=0.01)
    decoder_optimizer = torch.optim.Adam(decoder.parameters(), lr=0.01)
    criterion = nn.NLLLoss()
    sources = torch.tensor(ports.rng.integers(1, 10, (5, 3, MAX_LENGTH)))
    targets = torch.tensor(ports.rng.integers(1, 9, (5, 3, MAX_LENGTH)))
    report = {"losses": []}
    for input_tensor, target_tensor in zip(sources, targets):
        encoder_optimizer.zero_grad()
        decoder_optimizer.zero_grad()
        encoder_outputs, encoder_hidden = encoder(input_tensor)
        decoder_outputs, _, attentions = decoder(encoder_outputs, encoder_hidden, target_tensor)
        loss = criterion(decoder_outputs.view(-1, decoder_outputs.size(-1)),
                         target_tensor.view(-1))
        loss.backward()
        encoder_optimizer.step()
        decoder_optimizer.step()
        report["losses"].append(loss.item())
    report["attention_sum"] = attentions.sum(dim=-1).mean().item()
    report["attention_max"] = attentions.max().item()
    return report
