"""Generated flatbuffer code for the TFLite Metadata schema (see tools/gen_metadata_schema.sh)."""
