"""A character-level RNN classifier as PyTorch's name-classification tutorial writes it:
one-hot letters (``torch.zeros`` and item assignment), ``nn.RNN`` over a sequence, the last
hidden state through a Linear and ``LogSoftmax``, ``NLLLoss``, SGD with gradient clipping;
midway the model and optimizer are saved with ``torch.save`` and loaded into fresh ones
(``weights_only=True``), as a resumed run does."""

import io
import string

import torch
import torch.nn as nn

ALL_LETTERS = string.ascii_letters + " .,;'"


def line_to_tensor(line):
    tensor = torch.zeros(len(line), 1, len(ALL_LETTERS))
    for li, letter in enumerate(line):
        tensor[li][0][ALL_LETTERS.find(letter)] = 1
    return tensor


class CharRNN(nn.Module):
    def __init__(self, input_size, hidden_size, output_size):
        super().__init__()
        self.rnn = nn.RNN(input_size, hidden_size)
        self.h2o = nn.Linear(hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, line_tensor):
        rnn_out, hidden = self.rnn(line_tensor)
        return self.softmax(self.h2o(hidden[0]))


def run(ports):
    names = ["Abe", "Nakamura", "Schmidt", "O'Neil", "Dubois", "Rossi", "Kowalski", "Silva",
             "Smith", "Tanaka", "Muller", "Moreau", "Bianchi", "Nowak", "Santos", "Jones"]
    labels = ports.rng.integers(0, 4, len(names))
    model = CharRNN(len(ALL_LETTERS), 16, 4)
    ports.start("char_rnn", model)
    criterion = nn.NLLLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    losses = []
    for epoch in range(3):
        if epoch == 2:      # resume from a checkpoint, as a second run would
            buffer = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "epoch": epoch}, buffer)
            buffer.seek(0)
            checkpoint = torch.load(buffer, weights_only=True)
            model = CharRNN(len(ALL_LETTERS), 16, 4)
            model.load_state_dict(checkpoint["model"])
            optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
            optimizer.load_state_dict(checkpoint["optimizer"])
        total = 0.0
        for name, label in zip(names, labels):
            output = model(line_to_tensor(name))
            loss = criterion(output, torch.tensor([int(label)], dtype=torch.long))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 3)
            optimizer.step()
            total += loss.item()
        losses.append(total / len(names))
    model.eval()
    with torch.no_grad():
        guesses = [model(line_to_tensor(n)).topk(1)[1][0].item() for n in names[:4]]
    return {"losses": losses, "guesses": guesses}
