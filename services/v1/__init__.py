"""Generated contract modules (dialtone.v1.*_pb2, *_pb2_grpc).

The modules beside this file are written by proto/generate.py at build time from
proto/dialtone/v1/*.proto; they are git-ignored and never edited by hand.
"""
