/* placeholder suite */
int main(void) { return 77; }
