"""The Restore Highlights step: bring back what clipping destroyed. Never imports bpy.

* ``network``: the highlight network (a masked-feature U-Net in the log domain with a
  global-context branch) and its weights.
* ``learned``: ``restore_highlights_learned``: scale, tiles, precision and the blend that
  run the network on an image.
* ``classical``: the classical expansions (Kovaleski-Oliveira 2014, Masia 2017).
* ``tiling``: feathered tiles with wrap-around columns for panoramas.
"""
