"""The default listener, in one place: the alert-sound table (``table``), the pretrained network made into
those sounds (``building``, ``network``), their decisions learnt on real recordings (``heads``) and what
the ear is taught new sounds against (``reference``). Nothing is imported here, so the torch-free table
stays torch-free.
"""
