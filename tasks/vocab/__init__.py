"""The project's SentencePiece vocabulary (`synthpre_en_8k.model`) and its training script.

Load it through `tasks.text_vocab.get_vocabulary()`, which adds T5's 100 sentinel ids.
"""
