"""Skip-gram word vectors with negative sampling as the common PyTorch implementations write
them: two ``nn.Embedding(..., sparse=True)`` tables scored with ``bmm`` and ``logsigmoid``,
trained with ``optim.SparseAdam`` under a cosine learning-rate schedule, on pairs a
``DataLoader`` batches with its own ``collate_fn``."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn import init
from torch.utils.data import DataLoader, Dataset


class SkipGramModel(nn.Module):

    def __init__(self, emb_size, emb_dimension):
        super(SkipGramModel, self).__init__()
        self.emb_size = emb_size
        self.emb_dimension = emb_dimension
        self.u_embeddings = nn.Embedding(emb_size, emb_dimension, sparse=True)
        self.v_embeddings = nn.Embedding(emb_size, emb_dimension, sparse=True)

        initrange = 1.0 / self.emb_dimension
        init.uniform_(self.u_embeddings.weight.data, -initrange, initrange)
        init.constant_(self.v_embeddings.weight.data, 0)

    def forward(self, pos_u, pos_v, neg_v):
        emb_u = self.u_embeddings(pos_u)
        emb_v = self.v_embeddings(pos_v)
        emb_neg_v = self.v_embeddings(neg_v)

        score = torch.sum(torch.mul(emb_u, emb_v), dim=1)
        score = torch.clamp(score, max=10, min=-10)
        score = -F.logsigmoid(score)

        neg_score = torch.bmm(emb_neg_v, emb_u.unsqueeze(2)).squeeze()
        neg_score = torch.clamp(neg_score, max=10, min=-10)
        neg_score = -torch.sum(F.logsigmoid(-neg_score), dim=1)

        return torch.mean(score + neg_score)


class Word2vecDataset(Dataset):
    def __init__(self, corpus, window_size, negatives):
        self.corpus, self.window_size, self.negatives = corpus, window_size, negatives

    def __len__(self):
        return len(self.corpus)

    def __getitem__(self, idx):
        word = int(self.corpus[idx])
        lo, hi = max(0, idx - self.window_size), min(len(self.corpus), idx + self.window_size + 1)
        return [(word, int(self.corpus[j]), self.negatives[idx].tolist())
                for j in range(lo, hi) if j != idx]

    @staticmethod
    def collate(batches):
        all_u = [u for batch in batches for u, _, _ in batch if len(batch) > 0]
        all_v = [v for batch in batches for _, v, _ in batch if len(batch) > 0]
        all_neg_v = [neg_v for batch in batches for _, _, neg_v in batch if len(batch) > 0]
        return torch.LongTensor(all_u), torch.LongTensor(all_v), torch.LongTensor(all_neg_v)


def run(ports):
    vocab, dim = 50, 16
    # a corpus with structure: words follow their neighbours more often than chance
    corpus = (ports.rng.integers(0, 5, 400).cumsum() % vocab)
    negatives = ports.rng.integers(0, vocab, (len(corpus), 5))
    dataset = Word2vecDataset(corpus, window_size=2, negatives=negatives)
    dataloader = DataLoader(dataset, batch_size=16, shuffle=False, collate_fn=dataset.collate)

    model = SkipGramModel(vocab, dim)
    ports.start("skipgram", model)
    optimizer = torch.optim.SparseAdam(list(model.parameters()), lr=0.05)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, len(dataloader))
    losses = []
    for i, (pos_u, pos_v, neg_v) in enumerate(dataloader):
        optimizer.zero_grad()
        loss = model.forward(pos_u, pos_v, neg_v)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    with torch.no_grad():
        vectors = model.u_embeddings.weight
        similarity = F.cosine_similarity(vectors[1:2], vectors, dim=1)
    return {"loss": losses, "grad_is_sparse": model.u_embeddings.weight.grad.is_sparse,
            "nearest": similarity.topk(3).indices.tolist(),
            "norm": vectors.norm().item()}
