/* wire_dec: not written yet */
