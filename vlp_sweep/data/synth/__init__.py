"""A synthetic, sign-like corpus: pose keypoints (+ optional per-frame "SigLIP" features) vs sentences.

Generative model (all coordinates first in *body units*: origin at the shoulder centre, shoulder
width 1, y down, canonical right-handed signer whose dominant hand is on the image's left), one
module per concern:

- ``glosses``: every gloss of the lexicon has its own motion, drawn from a hash of (seed, gloss
  name): a location in signing space (one of a few anchors + an offset), a path of low-frequency
  sinusoids plus a drift, a handshape (per-finger curl, maybe changing during the sign), a wrist
  rotation, a role for the other hand (resting, mirrored, alternating or a static base hand), a
  head nod and a base duration. Glosses share anchors and handshapes, so they are confusable in
  parts (``geometry`` holds the anchors, handshapes and body proportions).
- ``timeline`` and ``motion``: a sentence is its gloss sequence: rest pose, glosses with smoothed
  transitions, rest pose, time-warped non-uniformly to the clip's length. Each occurrence of a
  gloss varies a little.
- ``signers``: signers differ in size, position, rotation, shear and vertical stretch (camera
  angle, build), speed, signing-space size and offset, hand size, handedness (left-handers are
  mirrored) and camera quality; dev/test use held-out signers only.
- ``kinematics``: hands by 2-D finger kinematics, arms by 2-link IK, then into the pixel frame.
- ``detector``: hands go missing in bursts (more for fast motion and for a resting non-dominant hand).
- ``siglip``: a fixed random projection of the current gloss's visual embedding (what a frame
  shows: location, handshape and a gloss-specific mouthing component that the keypoints do not
  carry) + the signer's appearance vector (a nuisance) + noise.
- ``language`` and ``corpus``: each gloss has a pseudo-word; word order differs from gloss order
  (signs put time first and verbs last, the text puts the verb second and adjectives before
  nouns, with articles). Or texts, gloss sequences, lengths and splits come from a corpus CSV.
- ``generate``: the entry (:func:`generate`, :func:`synthesize`). Everything is vectorised over all
  frames of a chunk of clips, so Phoenix scale takes seconds.

The same seed gives byte-identical output (``tests/data/test_synth_golden.py`` pins the bytes).
"""

from vlp_sweep.data.synth.generate import generate, synthesize
from vlp_sweep.data.synth.knobs import SynthParams, make_params

__all__ = ["SynthParams", "make_params", "generate", "synthesize"]
