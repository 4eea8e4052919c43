/* wire_enc: not written yet */
