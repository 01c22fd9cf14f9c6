"""A Glow-style normalizing flow as flow implementations write it: ActNorm with data-dependent
initialisation, an invertible 1x1 convolution parameterized by its LU decomposition
(``torch.linalg.lu_factor``/``torch.lu_unpack`` at init, ``torch.diag``, masks as buffers) and
an affine coupling layer, trained by maximum likelihood with log-determinants, then inverted."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


logabs = lambda x: torch.log(torch.abs(x))  # noqa: E731


class ActNorm(nn.Module):
    def __init__(self, in_channel):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(1, in_channel, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, in_channel, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    def initialize(self, input):
        with torch.no_grad():
            flatten = input.permute(1, 0, 2, 3).contiguous().view(input.shape[1], -1)
            mean = flatten.mean(1).unsqueeze(1).unsqueeze(2).unsqueeze(3).permute(1, 0, 2, 3)
            std = flatten.std(1).unsqueeze(1).unsqueeze(2).unsqueeze(3).permute(1, 0, 2, 3)
            self.loc.data.copy_(-mean)
            self.scale.data.copy_(1 / (std + 1e-6))

    def forward(self, input):
        _, _, height, width = input.shape
        if self.initialized.item() == 0:
            self.initialize(input)
            self.initialized.fill_(1)
        log_abs = logabs(self.scale)
        logdet = height * width * torch.sum(log_abs)
        return self.scale * (input + self.loc), logdet

    def reverse(self, output):
        return output / self.scale - self.loc


class InvConv2dLU(nn.Module):
    def __init__(self, in_channel, weight):
        super().__init__()
        q, _ = torch.linalg.qr(weight)
        LU, pivots = torch.linalg.lu_factor(q)
        w_p, w_l, w_u = torch.lu_unpack(LU, pivots)
        w_s = torch.diag(w_u)
        w_u = torch.triu(w_u, 1)
        u_mask = torch.triu(torch.ones_like(w_u), 1)
        l_mask = u_mask.T

        self.register_buffer("w_p", w_p)
        self.register_buffer("u_mask", u_mask)
        self.register_buffer("l_mask", l_mask)
        self.register_buffer("s_sign", torch.sign(w_s))
        self.register_buffer("l_eye", torch.eye(l_mask.shape[0]))
        self.w_l = nn.Parameter(w_l)
        self.w_s = nn.Parameter(logabs(w_s))
        self.w_u = nn.Parameter(w_u)

    def forward(self, input):
        _, _, height, width = input.shape
        weight = self.calc_weight()
        out = F.conv2d(input, weight)
        logdet = height * width * torch.sum(self.w_s)
        return out, logdet

    def calc_weight(self):
        weight = (
            self.w_p
            @ (self.w_l * self.l_mask + self.l_eye)
            @ ((self.w_u * self.u_mask) + torch.diag(self.s_sign * torch.exp(self.w_s)))
        )
        return weight.unsqueeze(2).unsqueeze(3)

    def reverse(self, output):
        weight = self.calc_weight()
        return F.conv2d(output, weight.squeeze().inverse().unsqueeze(2).unsqueeze(3))


class AffineCoupling(nn.Module):
    def __init__(self, in_channel, filter_size=16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channel // 2, filter_size, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(filter_size, in_channel, 3, padding=1))

    def forward(self, input):
        in_a, in_b = input.chunk(2, 1)
        log_s, t = self.net(in_a).chunk(2, 1)
        s = torch.sigmoid(log_s + 2)
        out_b = (in_b + t) * s
        logdet = torch.sum(torch.log(s).view(input.shape[0], -1), 1)
        return torch.cat([in_a, out_b], 1), logdet

    def reverse(self, output):
        out_a, out_b = output.chunk(2, 1)
        log_s, t = self.net(out_a).chunk(2, 1)
        s = torch.sigmoid(log_s + 2)
        return torch.cat([out_a, out_b / s - t], 1)


class Flow(nn.Module):
    def __init__(self, in_channel, weight):
        super().__init__()
        self.actnorm = ActNorm(in_channel)
        self.invconv = InvConv2dLU(in_channel, weight)
        self.coupling = AffineCoupling(in_channel)

    def forward(self, input):
        out, logdet = self.actnorm(input)
        out, det1 = self.invconv(out)
        out, det2 = self.coupling(out)
        return out, logdet + det1 + det2

    def reverse(self, output):
        return self.actnorm.reverse(self.invconv.reverse(self.coupling.reverse(output)))


def run(ports):
    channels, size = 4, 6
    weight = torch.tensor(ports.rng.standard_normal((channels, channels)), dtype=torch.float32)
    data = torch.tensor(ports.rng.standard_normal((64, channels, size, size)) * 0.5 + 0.3,
                        dtype=torch.float32)
    model = Flow(channels, weight)
    model(data[:16])                         # ActNorm's data-dependent initialisation
    ports.start("flow", model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    report = {"nll": []}
    n_pixel = channels * size * size
    for step in range(15):
        batch = data[(step % 4) * 16:(step % 4 + 1) * 16]
        z, logdet = model(batch)
        log_p = (-0.5 * (z ** 2) - 0.5 * math.log(2 * math.pi)).view(16, -1).sum(1)
        loss = -(log_p + logdet).mean() / n_pixel
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        report["nll"].append(loss.item())
    with torch.no_grad():
        z, _ = model(data[:4])
        report["inverse_error"] = (model.reverse(z) - data[:4]).abs().max().item() < 1e-4
    return report
