"""A fast neural style network as PyTorch's example builds one: reflection padding,
``InstanceNorm2d(affine=True)``, residual blocks, nearest-neighbour upsampling
(``F.interpolate``), and a loss of Gram matrices (``bmm``) against fixed style features,
with the content term. (SGD with momentum where the example has Adam: the biases of the
convolutions before an instance norm have gradients of zero but for rounding, whose sign
Adam's first step turns into a full step either way.)"""

import torch
import torch.nn.functional as F


class ConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        self.reflection_pad = torch.nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        return self.conv2d(self.reflection_pad(x))


class ResidualBlock(torch.nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = ConvLayer(channels, channels, kernel_size=3, stride=1)
        self.in2 = torch.nn.InstanceNorm2d(channels, affine=True)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        residual = x
        out = self.relu(self.in1(self.conv1(x)))
        out = self.in2(self.conv2(out))
        return out + residual


class UpsampleConvLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, upsample=None):
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = torch.nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = torch.nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return self.conv2d(self.reflection_pad(x))


class TransformerNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = ConvLayer(3, 8, kernel_size=5, stride=1)
        self.in1 = torch.nn.InstanceNorm2d(8, affine=True)
        self.conv2 = ConvLayer(8, 16, kernel_size=3, stride=2)
        self.in2 = torch.nn.InstanceNorm2d(16, affine=True)
        self.res1 = ResidualBlock(16)
        self.res2 = ResidualBlock(16)
        self.deconv1 = UpsampleConvLayer(16, 8, kernel_size=3, stride=1, upsample=2)
        self.in4 = torch.nn.InstanceNorm2d(8, affine=True)
        self.deconv3 = ConvLayer(8, 3, kernel_size=5, stride=1)
        self.relu = torch.nn.ReLU()

    def forward(self, X):
        y = self.relu(self.in1(self.conv1(X)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.res2(self.res1(y))
        y = self.relu(self.in4(self.deconv1(y)))
        return self.deconv3(y)


def gram_matrix(y):
    (b, ch, h, w) = y.size()
    features = y.view(b, ch, w * h)
    features_t = features.transpose(1, 2)
    return features.bmm(features_t) / (ch * h * w)


def normalize_batch(batch):
    mean = batch.new_tensor([0.485, 0.456, 0.406]).view(-1, 1, 1)
    std = batch.new_tensor([0.229, 0.224, 0.225]).view(-1, 1, 1)
    batch = batch.div_(255.0)
    return (batch - mean) / std


def run(ports):
    transformer = TransformerNet()
    ports.start("style", transformer)
    optimizer = torch.optim.SGD(transformer.parameters(), 1e-6, momentum=0.9)
    mse_loss = torch.nn.MSELoss()
    style = torch.tensor(ports.rng.uniform(0, 255, (1, 3, 12, 12)), dtype=torch.float32)
    gram_style = gram_matrix(normalize_batch(style.clone()))
    images = torch.tensor(ports.rng.uniform(0, 255, (3, 2, 3, 12, 12)), dtype=torch.float32)
    report = {"content": [], "style": []}
    for x in images:
        n_batch = len(x)
        optimizer.zero_grad()
        y = transformer(normalize_batch(x.clone()))
        x = normalize_batch(x)
        content_loss = 1e5 * mse_loss(y, x)
        gm_y = gram_matrix(y)
        style_loss = 1e10 * mse_loss(gm_y, gram_style[:n_batch, :, :].expand_as(gm_y)) * 1e-10
        total_loss = content_loss + style_loss
        total_loss.backward()
        optimizer.step()
        report["content"].append(content_loss.item())
        report["style"].append(style_loss.item())
    with torch.no_grad():
        output = transformer(normalize_batch(images[0].clone()))
    report["output_abs_mean"] = output.abs().mean().item()
    output = output.clamp(0, 255)
    report["output_mean"] = output.mean().item()
    return report
