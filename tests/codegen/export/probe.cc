// A function declared without the export macro: in a library built with
// hidden visibility it must be hidden, which check_exports.sh verifies to
// show that the exported symbols owe their visibility to the macro.
int CodegenHiddenProbe() { return 42; }
