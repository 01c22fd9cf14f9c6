"""A small vision transformer as PyTorch's example builds one: patches cut with ``unfold``
and embedded by a Linear, a learned class token and positions (``nn.Parameter(torch.randn)``),
pre-norm encoder blocks of ``nn.MultiheadAttention`` and a GELU MLP, cross-entropy with label
smoothing, AdamW and a cosine schedule."""

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchExtractor(nn.Module):
    def __init__(self, patch_size=4):
        super().__init__()
        self.patch_size = patch_size

    def forward(self, input_data):
        batch_size, channels, height, width = input_data.size()
        patches = input_data.unfold(2, self.patch_size, self.patch_size).unfold(
            3, self.patch_size, self.patch_size)
        patches = patches.contiguous().view(batch_size, channels, -1, self.patch_size,
                                            self.patch_size)
        patches = patches.permute(0, 2, 1, 3, 4).contiguous()
        return patches.view(batch_size, patches.size(1), -1)


class InputEmbedding(nn.Module):
    def __init__(self, patch_size, n_channels, latent_size, num_patches):
        super().__init__()
        self.linear_projection = nn.Linear(patch_size * patch_size * n_channels, latent_size)
        self.class_token = nn.Parameter(torch.randn(1, 1, latent_size))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, latent_size))
        self.patches = PatchExtractor(patch_size)

    def forward(self, input_data):
        patches = self.linear_projection(self.patches(input_data))
        b, n, _ = patches.shape
        patches = torch.cat((self.class_token.expand(b, -1, -1), patches), dim=1)
        return patches + self.pos_embedding[:, :n + 1, :]


class EncoderBlock(nn.Module):
    def __init__(self, latent_size, num_heads, dropout=0.0):
        super().__init__()
        self.norm = nn.LayerNorm(latent_size)
        self.attention = nn.MultiheadAttention(latent_size, num_heads, dropout=dropout,
                                               batch_first=True)
        self.norm2 = nn.LayerNorm(latent_size)
        self.enc_MLP = nn.Sequential(nn.Linear(latent_size, latent_size * 2), nn.GELU(),
                                     nn.Dropout(dropout), nn.Linear(latent_size * 2, latent_size),
                                     nn.Dropout(dropout))

    def forward(self, emb_patches):
        first_norm = self.norm(emb_patches)
        attention_out = self.attention(first_norm, first_norm, first_norm)[0]
        first_added = attention_out + emb_patches
        return self.enc_MLP(self.norm2(first_added)) + first_added


class ViT(nn.Module):
    def __init__(self, num_encoders=2, latent_size=16, num_heads=2, num_classes=5):
        super().__init__()
        self.embedding = InputEmbedding(4, 3, latent_size, 4)
        self.encoders = nn.ModuleList([EncoderBlock(latent_size, num_heads)
                                       for _ in range(num_encoders)])
        self.MLPHead = nn.Sequential(nn.LayerNorm(latent_size), nn.Linear(latent_size, 16),
                                     nn.Linear(16, num_classes))

    def forward(self, test_input):
        enc_output = self.embedding(test_input)
        for enc_layer in self.encoders:
            enc_output = enc_layer(enc_output)
        class_token_embed = enc_output[:, 0]
        return self.MLPHead(class_token_embed)


def run(ports):
    model = ViT()
    ports.start("vit", model)
    images = torch.tensor(ports.rng.standard_normal((5, 6, 3, 8, 8)), dtype=torch.float32)
    labels = torch.tensor(ports.rng.integers(0, 5, (5, 6)))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.03)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    report = {"losses": [], "correct": []}
    for x, y in zip(images, labels):
        optimizer.zero_grad()
        output = model(x)
        loss = criterion(output, y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        report["losses"].append(loss.item())
        report["correct"].append(int((output.argmax(dim=1) == y).sum().item()))
    model.eval()
    with torch.no_grad():
        probs = F.softmax(model(images[0]), dim=-1)
    report["probs"] = probs[0].tolist()
    report["lr"] = scheduler.get_last_lr()
    return report
